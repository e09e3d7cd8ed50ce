"""The one error shape of the API: `{"error": {"type", "message", "details"}}`.

Every error family of the project subclasses `GatewayError` (providers/core/error_base.py)
and renders through its `to_dict()`; DRF exceptions, Django's 404s and anything
unexpected are translated here, so no response is ever a stack trace or an
HTML page.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from llmwrapper.db import DB_ERRORS
from providers.core.error_base import GatewayError

logger = logging.getLogger(__name__)


class ApplicationError(GatewayError):
    """The services' errors (404, 409, validation, limits); other families share the base."""

    type = "application_error"
    status = 400


class ResourceNotFoundError(ApplicationError):
    type = "not_found"
    status = 404


class ResourceConflictError(ApplicationError):
    type = "conflict"
    status = 409


class PermissionDeniedError(ApplicationError):
    type = "permission_denied"
    status = 403


class ValidationFailedError(ApplicationError):
    type = "validation_error"
    status = 400


def error_body(type_: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message, "details": details}}


def error_response(type_: str, message: str, status: int, details: Any = None) -> JsonResponse:
    return JsonResponse(error_body(type_, message, details), status=status)


_DRF_TYPES: dict[type[drf_exceptions.APIException], str] = {
    drf_exceptions.ParseError: "malformed_request",
    drf_exceptions.AuthenticationFailed: "unauthenticated",
    drf_exceptions.NotAuthenticated: "unauthenticated",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "rate_limited",
}


def _drf_error(exc: drf_exceptions.APIException) -> tuple[str, str, Any, int]:
    if isinstance(exc, drf_exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            return "validation_error", "Invalid request: see details.", detail, 400
        return (
            "validation_error",
            "; ".join(str(d) for d in detail),
            {"non_field_errors": detail},
            400,
        )
    type_ = next((t for cls, t in _DRF_TYPES.items() if isinstance(exc, cls)), "error")
    message = str(exc.detail)
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        message = "Missing API key: send 'Authorization: Bearer <key>'."
    return type_, message, getattr(exc, "details", None), exc.status_code


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception raised in an API view ends here."""
    headers: dict[str, str] = {}
    if isinstance(exc, GatewayError):
        body, status, headers = {"error": exc.to_dict()}, exc.status, dict(exc.headers)
    elif isinstance(exc, drf_exceptions.APIException):
        type_, message, details, status = _drf_error(exc)
        body = error_body(type_, message, details)
        if isinstance(exc, drf_exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait + 0.999))
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
    elif isinstance(exc, Http404):
        body, status = error_body("not_found", "Not found."), 404
    elif isinstance(exc, PermissionDenied):
        body, status = error_body("permission_denied", "Permission denied."), 403
    elif isinstance(exc, RequestDataTooBig):
        body, status = request_too_large_body(), 413
    elif isinstance(exc, DB_ERRORS):
        body, status, headers = database_unavailable(exc)
    else:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        body, status = error_body("internal_error", "Internal server error."), 500
    return Response(body, status=status, headers=headers)


def database_unavailable(exc: BaseException) -> tuple[dict[str, Any], int, dict[str, str]]:
    """503 with Retry-After for a database that is away or a pool with no connection free."""
    from llmwrapper.db import is_pool_exhausted

    busy = is_pool_exhausted(exc)
    logger.warning("Database %s: %s", "pool exhausted" if busy else "unavailable", exc)
    reason = "database_busy" if busy else "database_unavailable"
    body = error_body(
        "service_unavailable",
        "The service is busy; retry shortly."
        if busy
        else "The database is unavailable; retry shortly.",
        {"reason": reason},
    )
    return body, 503, {"Retry-After": "1" if busy else "5"}


def request_too_large_body(limit: int | None = None) -> dict[str, Any]:
    from django.conf import settings

    limit = limit or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_body(
        "request_too_large",
        f"Request body exceeds the limit of {limit} bytes.",
        {"limit_bytes": limit},
    )


# Django-level handlers (outside DRF views: unknown URLs, crashes in plain views).
def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response("not_found", "Not found.", 404)


def handler500(request: HttpRequest) -> JsonResponse:
    return error_response("internal_error", "Internal server error.", 500)


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(request_too_large_body(), status=413)
    return error_response("bad_request", "Bad request.", 400)


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response("permission_denied", "Permission denied.", 403)


def api_not_found(request: HttpRequest) -> JsonResponse:
    """Catch-all for unknown paths under /api/, whatever DEBUG says."""
    return error_response("not_found", f"No endpoint at {request.path}.", 404)
