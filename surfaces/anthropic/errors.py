"""Our errors in Anthropic's shape, with the statuses its SDK maps to its exceptions."""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions as drf_exceptions

from llmwrapper.db import DB_ERRORS
from llmwrapper.errors import database_unavailable
from providers.core.content import ContentError
from providers.core.error_base import GatewayError
from providers.core.errors import ProviderError

logger = logging.getLogger(__name__)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class AnthropicError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        default = "invalid_request_error" if status < 500 else "api_error"
        self.type = type_ or _ERROR_TYPES.get(status, default)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.type, "message": self.message}}


def anthropic_error(exc: BaseException) -> AnthropicError:
    """Our errors in Anthropic's shape, with the status its SDK maps to its exceptions."""
    if isinstance(exc, AnthropicError):
        return exc
    if isinstance(exc, drf_exceptions.ValidationError):
        return AnthropicError(400, "; ".join(_described(exc.detail)) or "Invalid request.")
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        message = "Missing API key: send 'x-api-key: <key>' or 'Authorization: Bearer <key>'."
        return AnthropicError(401, message)
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        return AnthropicError(401, str(exc.detail))
    if isinstance(exc, drf_exceptions.Throttled):
        seconds = str(max(1, math.ceil(exc.wait))) if exc.wait is not None else "1"
        return AnthropicError(429, str(exc.detail), headers={"Retry-After": seconds})
    if isinstance(exc, drf_exceptions.APIException):
        return AnthropicError(exc.status_code, str(exc.detail))
    if isinstance(exc, RequestDataTooBig):
        return AnthropicError(413, "The request body is too large.")
    if isinstance(exc, GatewayError):
        return _gateway_error(exc)
    if isinstance(exc, DB_ERRORS):
        body, _, headers = database_unavailable(exc)
        return AnthropicError(529, body["error"]["message"], headers=headers)
    logger.exception("Unhandled error in the Anthropic-compatible API", exc_info=exc)
    return AnthropicError(500, "Internal server error.")


def _gateway_error(exc: GatewayError) -> AnthropicError:
    headers = dict(exc.headers)
    if exc.status == 429:  # the vendor's limit or ours: RateLimitError, with Retry-After
        return AnthropicError(429, exc.message, headers=headers)
    if isinstance(exc, ContentError):
        return AnthropicError(exc.status, f"{exc.details['part']}: {exc.message}")
    if isinstance(exc, ProviderError):
        if exc.type in ("unknown_provider", "model_not_found"):
            return AnthropicError(404, exc.message)
        if exc.status >= 500 and exc.upstream_status in (503, 529):
            return AnthropicError(529, exc.message, headers=headers)
    if exc.status == 503:  # our database or pool: Anthropic's "overloaded, retry"
        return AnthropicError(529, exc.message, headers=headers)
    return AnthropicError(exc.status, exc.message, headers=headers)


def _described(detail: Any, path: str = "") -> list[str]:
    """DRF's field errors as Anthropic words them: `messages.0.role: ...`."""
    if isinstance(detail, dict):
        return [
            line
            for key, value in detail.items()
            for line in _described(value, path if key == "non_field_errors" else _join(path, key))
        ]
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            text = " ".join(str(item) for item in detail)
            return [f"{path}: {text}" if path else text]
        return [line for i, item in enumerate(detail) for line in _described(item, _join(path, i))]
    return [f"{path}: {detail}" if path else str(detail)]


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)
