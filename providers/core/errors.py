"""Errors raised by the provider core.

Adapters turn every SDK or transport exception into one of these, so callers handle a
single hierarchy. This is the one place that maps them to HTTP: `status` is the status
the gateway answers with (the vendor's own is kept in `upstream_status`) and `headers`
the headers to send with it (`Retry-After` in whole seconds on 429 and 503).
`to_dict()` gives the product's error shape (without the outer "error" key), the same
for JSON bodies, SSE and WebSocket events; its `details.retry_after` is the same whole
number of seconds as the header.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any

from providers.core.error_base import GatewayError


class ProviderError(GatewayError):
    status: int = 502
    type: str = "provider_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        upstream_status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details=dict(details or {}))
        self.provider = provider
        self.upstream_status = upstream_status
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after

    def wire_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "provider": self.provider,
            "upstream_status": self.upstream_status,
            **self.details,
        }
        if self.retry_after_seconds is not None:
            details["retry_after"] = self.retry_after_seconds
        return details

    @property
    def retry_after_seconds(self) -> int | None:
        """The vendor's Retry-After rounded up to whole seconds (at least 1), or None."""
        if self.retry_after is None:
            return None
        return max(1, math.ceil(self.retry_after))

    @property
    def headers(self) -> dict[str, str]:
        """Headers of the gateway's answer for this error."""
        seconds = self.retry_after_seconds
        if self.status in (429, 503) and seconds is not None:
            return {"Retry-After": str(seconds)}
        return {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, "
            f"upstream_status={self.upstream_status!r})"
        )


class ProviderNotConfiguredError(ProviderError):
    status = 400
    type = "provider_not_configured"

    def __init__(self, provider: str, env_var: str) -> None:
        super().__init__(
            f"Provider '{provider}' is not configured: set {env_var}",
            provider=provider,
            details={"env_var": env_var},
        )


class UnknownProviderError(ProviderError):
    status = 400
    type = "unknown_provider"

    def __init__(self, provider: str, known: list[str] | tuple[str, ...] = ()) -> None:
        names = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"Unknown provider '{provider}' (available: {names})",
            provider=provider,
            details={"available": sorted(known)},
        )


class ProviderBadRequestError(ProviderError):
    """The vendor rejected the request itself: retrying or falling back cannot help."""

    status = 400
    type = "provider_bad_request"


class ModelNotFoundError(ProviderError):
    status = 400
    type = "model_not_found"


class ProviderAuthError(ProviderError):
    """Our credentials for the vendor were refused (a gateway fault, hence 502)."""

    status = 502
    type = "provider_auth_failed"


class ProviderRateLimitError(ProviderError):
    """The vendor's rate limit, still hit after the retries: the client should slow down
    too, so it gets a 429 with Retry-After (the vendor's value, or a default)."""

    status = 429
    type = "provider_rate_limited"
    retryable = True
    default_retry_after = 5

    @property
    def retry_after_seconds(self) -> int:
        seconds = super().retry_after_seconds
        return self.default_retry_after if seconds is None else seconds


class ProviderUpstreamError(ProviderError):
    status = 502
    type = "provider_error"


class ProviderTimeoutError(ProviderError):
    status = 504
    type = "provider_timeout"
    retryable = True


class ProviderStreamInterruptedError(ProviderError):
    """The response body ended or broke before the model finished.

    Retryable in the sense that a fresh attempt may succeed; the retry layer still only
    retries when nothing of this attempt reached the caller.
    """

    status = 502
    type = "provider_stream_interrupted"
    retryable = True


def error_from_status(
    status: int,
    message: str,
    *,
    provider: str,
    retry_after: float | None = None,
) -> ProviderError:
    """Map a vendor's HTTP error status to our error class."""
    kwargs: dict[str, Any] = {"provider": provider, "upstream_status": status}
    if status == 429:
        return ProviderRateLimitError(message, retry_after=retry_after, **kwargs)
    if status in (401, 403):
        return ProviderAuthError(message, **kwargs)
    if status == 404:
        return ModelNotFoundError(message, **kwargs)
    # 408 and 409 are transient by the vendors' own SDK conventions.
    if status in (408, 409) or status >= 500:
        return ProviderUpstreamError(message, retryable=True, retry_after=retry_after, **kwargs)
    if 400 <= status < 500:
        return ProviderBadRequestError(message, **kwargs)
    return ProviderUpstreamError(message, **kwargs)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or retry-after-ms."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def redact(message: str, secret: str | None) -> str:
    """Vendors sometimes echo the key they were sent; never pass it on."""
    if secret and len(secret) >= 4 and secret in message:
        return message.replace(secret, "***")
    return message


class RouteUnavailableError(ProviderError):
    """Every deployment of a route is resting after failures (503, with Retry-After:
    when the first of them is back)."""

    status = 503
    type = "route_unavailable"

    def __init__(self, route: str, *, retry_after: float) -> None:
        super().__init__(
            f"Every deployment of route '{route}' is cooling down after failures",
            provider=route,
            retry_after=retry_after,
        )
