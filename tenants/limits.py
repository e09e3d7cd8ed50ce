"""Per-key and per-subtenant limits: requests per minute, tokens per minute, and token
budgets per period.

- Requests are counted when they are authenticated (a DRF throttle); the tightest of
  the key's and the subtenant's limits is reported in `RateLimit-*` headers on every
  response, and a request over a limit gets 429 with `Retry-After`.
- Tokens are counted after each provider call (every path: chat sends, direct calls,
  the OpenAI-compatible API, each tool round). A call is refused up front when the
  subtenant already used its tokens for the minute, or its budget for the period:
  the tokens of a call are only known after it, so a budget can be overrun by the
  calls in flight when it runs out, never by a call started after.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from llmwrapper import counters
from llmwrapper.errors import ApplicationError
from llmwrapper.middleware import AsyncCapableMiddleware
from tenants.models import ApiKey, Subtenant, TokenUsage


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


def token_checks_needed(subtenant: Subtenant) -> bool:
    """Whether `check_tokens` has anything to look at (no I/O)."""
    return bool(_limit(subtenant.rate_limit_tpm, settings.RATE_LIMIT_TPM)) or (
        subtenant.token_budget is not None
    )


def check_tokens(subtenant: Subtenant) -> None:
    """Refuse a new LLM call when the minute's tokens or the period's budget are used up."""
    tpm = _limit(subtenant.rate_limit_tpm, settings.RATE_LIMIT_TPM)
    if tpm:
        decision = counters.hit(f"tpm:sub:{subtenant.pk}", limit=tpm, cost=0)
        if decision.used >= tpm:
            raise RateLimitedError(
                f"Token rate limit reached: {tpm} tokens per minute.",
                retry_after=decision.retry_after_s,
                details={"scope": "subtenant", "limit": tpm, "unit": "tokens"},
            )
    if subtenant.token_budget is not None:
        start, end = budget_period(subtenant)
        used = (
            TokenUsage.objects.filter(subtenant=subtenant, period_start=start)
            .values_list("tokens", flat=True)
            .first()
            or 0
        )
        if used >= subtenant.token_budget:
            retry = int((end - timezone.now()).total_seconds()) + 1
            raise BudgetExhaustedError(
                f"The token budget of {subtenant.token_budget} tokens "
                f"for this {subtenant.budget_period} is used up.",
                retry_after=retry,
                details={
                    "budget": subtenant.token_budget,
                    "used": used,
                    "period_start": str(start),
                },
            )


def record_rate_tokens(subtenant: Subtenant, tokens: int) -> None:
    """Count tokens against the per-minute limit (the shared counters)."""
    if tokens > 0 and _limit(subtenant.rate_limit_tpm, settings.RATE_LIMIT_TPM):
        counters.hit(f"tpm:sub:{subtenant.pk}", limit=0, cost=tokens)


def record_budget_tokens(subtenant: Subtenant, tokens: int) -> None:
    """Count tokens against the budget period (a database write: one transaction with
    the call records that used them)."""
    if tokens > 0 and subtenant.token_budget is not None:
        start, _ = budget_period(subtenant)
        updated = TokenUsage.objects.filter(subtenant=subtenant, period_start=start).update(
            tokens=F("tokens") + tokens
        )
        if not updated:
            usage, created = TokenUsage.objects.get_or_create(
                subtenant=subtenant, period_start=start, defaults={"tokens": tokens}
            )
            if not created:
                TokenUsage.objects.filter(pk=usage.pk).update(tokens=F("tokens") + tokens)


def budget_period(subtenant: Subtenant) -> tuple[dt.date, dt.datetime]:
    """The current period's first day and the moment it ends (UTC)."""
    now = timezone.now()
    if subtenant.budget_period == "day":
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
