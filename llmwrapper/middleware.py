"""Middleware that must run before any view reads the request body."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from llmwrapper.errors import error_response, request_too_large_body

logger = logging.getLogger(__name__)


# Paths of API clients, which authenticate with bearer keys and use no browser session.
API_PATHS = ("/api/v1/", "/v1/", "/health", "/metrics", "/ws/")


class AsyncCapableMiddleware(abc.ABC):
    """Base of our middleware: one code path for sync and async stacks, no thread hops."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return self.handle_sync(request)

    @abc.abstractmethod
    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        """The request in an async stack."""

    @abc.abstractmethod
    def handle_sync(self, request: HttpRequest) -> HttpResponse:
        """The same request in a sync stack."""


class BodySizeLimitMiddleware(AsyncCapableMiddleware):
    """Answer 413 in the error shape when Content-Length exceeds the limit.

    Bodies without a Content-Length (chunked) are bounded by Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE while being read; the exception handler maps that to
    413 too. Unhandled exceptions of plain (non-DRF) views become a JSON 500 here, so
    even with DEBUG on the API never answers with an HTML page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        self.limit = settings.MAX_REQUEST_BODY_BYTES

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

    def handle_sync(self, request: HttpRequest) -> HttpResponse:
        return self._too_large(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return self._too_large(request) or await self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PATHS):
            return None
        logger.exception("Unhandled error on %s", request.path, exc_info=exception)
        return error_response("internal_error", "Internal server error.", 500)


class SecurityHeadersMiddleware(AsyncCapableMiddleware):
    """Django's SecurityMiddleware and XFrameOptionsMiddleware, run inline.

    Both only compute headers (and the https redirect), so under ASGI they need not
    hop to a thread as Django's sync-style middleware does on every request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        from django.middleware.clickjacking import XFrameOptionsMiddleware
        from django.middleware.security import SecurityMiddleware

        self.security = SecurityMiddleware(get_response)
        self.frames = XFrameOptionsMiddleware(get_response)

    def _finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response = self.security.process_response(request, response)
        return self.frames.process_response(request, response)

    def handle_sync(self, request: HttpRequest) -> HttpResponse:
        redirect = self.security.process_request(request)
        return self._finish(request, redirect or self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        redirect = self.security.process_request(request)
        return self._finish(request, redirect or await self.get_response(request))


class BrowserSessionMiddleware(AsyncCapableMiddleware):
    """Common, session, authentication and messages middleware for the admin only.

    API requests skip them: they do not use sessions, and under ASGI each of these
    Django middleware costs two thread hops per request. The admin's views protect
    themselves against CSRF (`csrf_protect`), so no CSRF middleware is needed.
    """

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        from django.contrib.auth.middleware import AuthenticationMiddleware
        from django.contrib.messages.middleware import MessageMiddleware
        from django.contrib.sessions.middleware import SessionMiddleware
        from django.middleware.common import CommonMiddleware

        chain = get_response
        for middleware in (
            MessageMiddleware,
            AuthenticationMiddleware,
            SessionMiddleware,
            CommonMiddleware,
        ):
            chain = middleware(chain)
        self.browser = chain

    def handle_sync(self, request: HttpRequest) -> HttpResponse:
        handler = self.get_response if request.path.startswith(API_PATHS) else self.browser
        return handler(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PATHS):
            return await self.get_response(request)
        return await self.browser(request)
