"""Writes for subtenants and API keys."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from llmwrapper.errors import ResourceConflictError
from tenants.models import ApiKey, Subtenant

KEY_PREFIX = "lw_"
_VISIBLE_CHARS = 12


def hash_key(raw_key: str) -> str:
    # Keys are 256-bit random tokens, so a fast unsalted digest is safe to store.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def subtenant_create(*, name: str, **fields: Any) -> Subtenant:
    try:
        with transaction.atomic():
            return Subtenant.objects.create(name=name, **fields)
    except IntegrityError as exc:
        raise ResourceConflictError(
            f"A subtenant named '{name}' already exists.", details={"name": name}
        ) from exc


def _forget_keys() -> None:
    from tenants.selectors import api_key_cache_clear

    api_key_cache_clear()


def subtenant_update(*, subtenant: Subtenant, **fields: Any) -> Subtenant:
    """Save changed fields (the admin passes none: its form already set them).

    Authenticated keys are cached with their subtenant, whose `is_active` and limits
    authentication and limits read: this process forgets them at once, so a
    deactivated subtenant's keys are refused from the next request on.
    """
    for field, value in fields.items():
        setattr(subtenant, field, value)
    try:
        with transaction.atomic():
            subtenant.save()
    except IntegrityError as exc:
        raise ResourceConflictError(
            f"A subtenant named '{subtenant.name}' already exists.",
            details={"name": subtenant.name},
        ) from exc
    _forget_keys()
    return subtenant


def subtenant_delete(*, subtenant: Subtenant) -> None:
    """Delete a subtenant with its keys, chats, messages and memories (cascade)."""
    with transaction.atomic():
        subtenant.delete()
    _forget_keys()


def api_key_create(
    *,
    name: str,
    subtenant: Subtenant | None = None,
    rate_limit_rpm: int | None = None,
    budget_usd: Decimal | None = None,
    budget_period: str = "month",
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is never stored."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name,
        subtenant=subtenant,
        prefix=raw[:_VISIBLE_CHARS],
        key_hash=hash_key(raw),
        rate_limit_rpm=rate_limit_rpm,
        budget_usd=budget_usd,
        budget_period=budget_period,
    )
    return key, raw


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    _forget_keys()
    return key


def api_key_touch_due(*, key: ApiKey, interval_seconds: int) -> bool:
    """Whether `api_key_touch` would write (no I/O)."""
    last = key.last_used_at
    return not last or timezone.now() - last >= timedelta(seconds=interval_seconds)


def api_key_touch(*, key: ApiKey, interval_seconds: int) -> None:
    """Record use, at most once per interval, so authentication is not a write per request."""
    if not api_key_touch_due(key=key, interval_seconds=interval_seconds):
        return
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now


def ensure_admin_key(*, name: str = "bootstrap") -> str | None:
    """Create an admin key when none is active; return its raw value, or None."""
    if ApiKey.objects.filter(subtenant__isnull=True, revoked_at__isnull=True).exists():
        return None
    _, raw = api_key_create(name=name)
    return raw
