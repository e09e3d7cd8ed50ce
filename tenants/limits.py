"""Per-key and per-subtenant limits: requests per minute, tokens per minute, and token
and dollar budgets per period.

- Requests are counted when they are authenticated (a DRF throttle); the tightest of
  the key's and the subtenant's limits is reported in `RateLimit-*` headers on every
  response, and a request over a limit gets 429 with `Retry-After`.
- Tokens and their cost (from the price table, `providers.prices`) are counted after
  each provider call (every path: chat sends, direct calls, the OpenAI-compatible API,
  each tool round), in the transaction that stores its record. A call is refused up
  front when the subtenant already used its tokens for the minute, or the subtenant or
  the key its budget for the period: what a call uses is only known after it, so a
  budget can be overrun by the calls in flight when it runs out, never by a call
  started after. Budgets are counted in the database (`TokenUsage`, `KeySpend`), so
  every process sees one count and a restart forgets nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from llmwrapper import counters
from llmwrapper.errors import ApplicationError
from llmwrapper.middleware import AsyncCapableMiddleware
from tenants import selectors
from tenants.models import ApiKey, KeySpend, Subtenant, TokenUsage


class RateLimitedError(ApplicationError):
    type = "rate_limited"
    status = 429

    def __init__(
        self,
        message: str,
        *,
        retry_after: int,
        limit: int | None = None,
        details: dict | None = None,
    ) -> None:
        super().__init__(message, details={"retry_after": retry_after, **(details or {})})
        self.headers = {"Retry-After": str(retry_after)}
        if limit:
            for prefix in ("RateLimit-", "X-RateLimit-"):
                self.headers.update(
                    {
                        f"{prefix}Limit": str(limit),
                        f"{prefix}Remaining": "0",
                        f"{prefix}Reset": str(retry_after),
                    }
                )


class BudgetExhaustedError(RateLimitedError):
    type = "token_budget_exhausted"


class SpendBudgetExhaustedError(RateLimitedError):
    """A budget in dollars is spent (a subtenant's or a key's)."""

    type = "budget_exhausted"


def _limit(value: int | None, default: int) -> int:
    return default if value is None else value


def check_request(key: ApiKey) -> counters.Decision | None:
    """Count one request for the key and its subtenant; raise when over a limit.

    Returns the decision closest to its limit (for the headers), None when unlimited.
    """
    decisions = []
    key_limit = _limit(key.rate_limit_rpm, settings.RATE_LIMIT_KEY_RPM)
    scopes = [("key", f"rpm:key:{key.pk}", key_limit)]
    if key.subtenant is not None:
        limit = _limit(key.subtenant.rate_limit_rpm, settings.RATE_LIMIT_RPM)
        scopes.append(("subtenant", f"rpm:sub:{key.subtenant_id}", limit))
    for scope, counter, limit in scopes:
        if not limit:
            continue
        decision = counters.hit(counter, limit=limit)
        if not decision.allowed:
            raise RateLimitedError(
                f"Too many requests for this {scope}: {limit} per minute.",
                retry_after=decision.retry_after_s,
                limit=limit,
                details={"scope": scope, "limit": limit},
            )
        decisions.append(decision)
    return min(decisions, key=lambda d: d.remaining, default=None)


def request_checks_needed(key: ApiKey) -> bool:
    """Whether `check_request` counts anything for this key (no I/O)."""
    if _limit(key.rate_limit_rpm, settings.RATE_LIMIT_KEY_RPM):
        return True
    subtenant = key.subtenant
    return subtenant is not None and bool(_limit(subtenant.rate_limit_rpm, settings.RATE_LIMIT_RPM))


def token_checks_needed(subtenant: Subtenant, key: ApiKey | None = None) -> bool:
    """Whether `check_tokens` has anything to look at (no I/O)."""
    return (
        bool(_limit(subtenant.rate_limit_tpm, settings.RATE_LIMIT_TPM))
        or subtenant.token_budget is not None
        or subtenant.budget_usd is not None
        or (key is not None and key.budget_usd is not None)
    )


def check_tokens(subtenant: Subtenant, key: ApiKey | None = None) -> None:
    """Refuse a new LLM call when the minute's tokens, or the period's token or dollar
    budget of the subtenant or of the key making the call, are used up."""
    tpm = _limit(subtenant.rate_limit_tpm, settings.RATE_LIMIT_TPM)
    if tpm:
        decision = counters.hit(f"tpm:sub:{subtenant.pk}", limit=tpm, cost=0)
        if decision.used >= tpm:
            raise RateLimitedError(
                f"Token rate limit reached: {tpm} tokens per minute.",
                retry_after=decision.retry_after_s,
                details={"scope": "subtenant", "limit": tpm, "unit": "tokens"},
            )
    if subtenant.token_budget is not None or subtenant.budget_usd is not None:
        start, end = budget_period(subtenant)
        tokens, spent = selectors.token_usage_get(subtenant=subtenant, period_start=start)
        if subtenant.token_budget is not None and tokens >= subtenant.token_budget:
            raise BudgetExhaustedError(
                f"The token budget of {subtenant.token_budget} tokens "
                f"for this {subtenant.budget_period} is used up.",
                retry_after=_seconds_until(end),
                details={
                    "budget": subtenant.token_budget,
                    "used": tokens,
                    "period_start": str(start),
                },
            )
        if subtenant.budget_usd is not None and spent >= subtenant.budget_usd:
            raise _spent(subtenant.budget_usd, spent, "subtenant", subtenant, start, end)
    if key is not None and key.budget_usd is not None:
        start, end = budget_period(key)
        spent = selectors.key_spend_get(key=key, period_start=start)
        if spent >= key.budget_usd:
            raise _spent(key.budget_usd, spent, "key", key, start, end)


def _seconds_until(end: dt.datetime) -> int:
    return int((end - timezone.now()).total_seconds()) + 1


def _spent(
    budget: Decimal,
    spent: Decimal,
    scope: str,
    owner: Subtenant | ApiKey,
    start: dt.date,
    end: dt.datetime,
) -> SpendBudgetExhaustedError:
    return SpendBudgetExhaustedError(
        f"The budget of {_usd(budget)} USD per {owner.budget_period} for this {scope} is spent.",
        retry_after=_seconds_until(end),
        details={
            "scope": scope,
            "budget_usd": _usd(budget),
            "spent_usd": _usd(spent),
            "period_start": str(start),
        },
    )


def _usd(amount: Decimal) -> str:
    return f"{Decimal(amount).normalize():f}"


def record_rate_tokens(subtenant: Subtenant, tokens: int) -> None:
    """Count tokens against the per-minute limit (the shared counters)."""
    if tokens > 0 and _limit(subtenant.rate_limit_tpm, settings.RATE_LIMIT_TPM):
        counters.hit(f"tpm:sub:{subtenant.pk}", limit=0, cost=tokens)


def record_budget_use(subtenant: Subtenant, *, tokens: int, cost_usd: Decimal) -> None:
    """Count tokens and dollars in the subtenant's period row, budget or not: it is the
    admin's usage per period, and it is there when a budget is set mid-period (a
    database write in the writer's thread: one transaction with the call records that
    used them, one UPDATE per subtenant and batch)."""
    if tokens <= 0 and cost_usd <= 0:
        return
    start, _ = budget_period(subtenant)
    _add(
        TokenUsage.objects.filter(subtenant=subtenant, period_start=start),
        {"subtenant": subtenant, "period_start": start},
        tokens=tokens,
        cost_usd=cost_usd,
    )


def record_key_spend(key: ApiKey, cost_usd: Decimal) -> None:
    """Count dollars in the key's period row, budget or not, as for subtenants (in the
    transaction of the call records; calls no price matched cost nothing)."""
    if cost_usd <= 0:
        return
    start, _ = budget_period(key)
    _add(
        KeySpend.objects.filter(api_key=key, period_start=start),
        {"api_key": key, "period_start": start},
        cost_usd=cost_usd,
    )


def _add(rows: QuerySet, lookup: dict[str, object], **amounts: int | Decimal) -> None:
    """Add to the period's row, creating it when it is the period's first use."""
    increments = {name: F(name) + amount for name, amount in amounts.items()}
    if rows.update(**increments):
        return
    _, created = rows.model.objects.get_or_create(**lookup, defaults=amounts)
    if not created:
        rows.update(**increments)


def budget_period(owner: Subtenant | ApiKey) -> tuple[dt.date, dt.datetime]:
    """The current period's first day and the moment it ends (UTC)."""
    now = timezone.now()
    if owner.budget_period == "day":
        start = now.date()
        end = dt.datetime.combine(start + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return start, end
    start = now.date().replace(day=1)
    next_month = (start + dt.timedelta(days=32)).replace(day=1)
    return start, dt.datetime.combine(next_month, dt.time(), tzinfo=dt.UTC)


class RequestRateThrottle(BaseThrottle):
    """Counts each authenticated API request against its key's and subtenant's limits."""

    def allow_request(self, request: Request, view: object) -> bool:
        key = getattr(request, "auth", None)
        if isinstance(key, ApiKey):
            request._request.rate_limit = check_request(key)
        return True


class RateLimitHeadersMiddleware(AsyncCapableMiddleware):
    """`RateLimit-Limit/Remaining/Reset` (and `X-RateLimit-*`) on every limited response."""

    def handle_sync(self, request: HttpRequest) -> HttpResponse:
        return _with_headers(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return _with_headers(request, await self.get_response(request))


def _with_headers(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    decision = getattr(request, "rate_limit", None)
    if decision is not None:
        reset = str(decision.retry_after_s)
        for prefix in ("RateLimit-", "X-RateLimit-"):
            response[f"{prefix}Limit"] = str(decision.limit)
            response[f"{prefix}Remaining"] = str(decision.remaining)
            response[f"{prefix}Reset"] = reset
    return response
