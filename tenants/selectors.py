"""Reads of subtenants, API keys and their budget use, scoped by the caller's key or subtenant."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.db.models import QuerySet

from llmwrapper.errors import ResourceNotFoundError
from tenants.models import ApiKey, KeySpend, Subtenant, TokenUsage
from tenants.services import hash_key

# Authenticated keys, by digest, for API_KEY_CACHE_SECONDS: authentication is then no
# database query. Revoking a key or changing a subtenant clears this process's entries at
# once; other processes see the change within the cache time.
_key_cache: dict[str, tuple[float, ApiKey]] = {}
# Raised by every clear: a key read before a clear is not cached after it (a request
# that read a key just before its subtenant was deactivated must not re-cache it).
_generation = 0


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    digest = hash_key(raw_key)
    ttl = settings.API_KEY_CACHE_SECONDS
    cached = _key_cache.get(digest)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    generation = _generation
    key = (
        ApiKey.objects.select_related("subtenant")
        .filter(key_hash=digest, revoked_at__isnull=True)
        .first()
    )
    if key is not None and ttl > 0 and generation == _generation:
        if len(_key_cache) > 10_000:
            _key_cache.clear()
        _key_cache[digest] = (now + ttl, key)
    return key


def api_key_remembered(*, raw_key: str) -> ApiKey | None:
    """The active key this process remembers for `raw_key` (see `api_key_get_active`),
    without reading the database: None when it is not remembered."""
    cached = _key_cache.get(hash_key(raw_key))
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    return None


def api_key_cache_clear() -> None:
    global _generation
    _generation += 1
    _key_cache.clear()


def subtenant_list(*, key: ApiKey) -> QuerySet[Subtenant]:
    qs = Subtenant.objects.all()
    if not key.is_admin:
        qs = qs.filter(pk=key.subtenant_id)
    return qs


def subtenant_access(*, key: ApiKey, subtenant_id: UUID | str) -> Subtenant:
    """The only way from a subtenant id in a request to a Subtenant.

    Another tenant's subtenant answers 404, exactly like a missing one.
    """
    subtenant = subtenant_list(key=key).filter(pk=subtenant_id).first()
    if subtenant is None:
        raise ResourceNotFoundError("Subtenant not found.", details={"id": str(subtenant_id)})
    return subtenant


def api_key_list(*, subtenant: Subtenant | None) -> QuerySet[ApiKey]:
    if subtenant is None:
        return ApiKey.objects.filter(subtenant__isnull=True)
    return ApiKey.objects.filter(subtenant=subtenant)


def api_key_access(*, subtenant: Subtenant | None, key_id: UUID | str) -> ApiKey:
    key = api_key_list(subtenant=subtenant).filter(pk=key_id).first()
    if key is None:
        raise ResourceNotFoundError("API key not found.", details={"id": str(key_id)})
    return key


def token_usage_get(*, subtenant: Subtenant, period_start: dt.date) -> tuple[int, Decimal]:
    """The tokens and dollars the subtenant used in the period starting then."""
    return (
        TokenUsage.objects.filter(subtenant=subtenant, period_start=period_start)
        .values_list("tokens", "cost_usd")
        .first()
    ) or (0, Decimal(0))


def key_spend_get(*, key: ApiKey, period_start: dt.date) -> Decimal:
    """The dollars the key spent in the period starting then."""
    return (
        KeySpend.objects.filter(api_key=key, period_start=period_start)
        .values_list("cost_usd", flat=True)
        .first()
    ) or Decimal(0)
