"""Middleware that must run before any view reads the request body."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from llmwrapper.errors import error_response, request_too_large_body

logger = logging.getLogger(__name__)


class BodySizeLimitMiddleware:
    """Answer 413 in the error shape when Content-Length exceeds the limit.

    Bodies without a Content-Length (chunked) are bounded by Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE while being read; the exception handler maps that to
    413 too. Unhandled exceptions of plain (non-DRF) views become a JSON 500 here, so
    even with DEBUG on the API never answers with an HTML page.
    """

    async_capable = True
    sync_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
    ):
        self.get_response = get_response
        self.limit = settings.MAX_REQUEST_BODY_BYTES
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _too_large(self, request: HttpRequest) -> JsonResponse | None:
        length = request.META.get("CONTENT_LENGTH")
        if not length:
            return None
        try:
            size = int(length)
        except ValueError:
            return error_response("bad_request", "Invalid Content-Length header.", 400)
        if size > self.limit:
            return JsonResponse(request_too_large_body(), status=413)
        return None

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return self._too_large(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return self._too_large(request) or await self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(("/api/", "/health", "/v1/")):
            return None
        logger.exception("Unhandled error on %s", request.path, exc_info=exception)
        return error_response("internal_error", "Internal server error.", 500)
