"""Middleware that must run before any view reads the request body, and the Host check
of every HTTP request and WebSocket handshake."""

from __future__ import annotations

import abc
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port, validate_host

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


class GateMiddleware(AsyncCapableMiddleware):
    """Middleware that either answers a request itself (a refusal) or passes it on."""

    @abc.abstractmethod
    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        """The answer refusing `request`, or None to pass it on."""

    def handle_sync(self, request: HttpRequest) -> HttpResponse:
        return self.refusal(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return self.refusal(request) or await self.get_response(request)


_CONTENT_PATHS = re.compile(
    r"^/(api/v1/llm/(complete|stream)|api/v1/chats/[^/]+/messages(/stream)?"
    r"|v1/(chat/completions|responses|messages(/count_tokens)?))$"
)


def takes_content(path: str) -> bool:
    """Whether the endpoint takes messages, which may carry images and documents
    (their bodies may reach MAX_CONTENT_REQUEST_BYTES; others MAX_REQUEST_BODY_BYTES)."""
    return _CONTENT_PATHS.match(path) is not None


class BodySizeLimitMiddleware(GateMiddleware):
    """Answer 413 in the error shape when Content-Length exceeds the limit.

    Bodies without a Content-Length (chunked) are bounded by Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE while being read; the exception handler maps that to
    413 too. Unhandled exceptions of plain (non-DRF) views become a JSON 500 here, so
    even with DEBUG on the API never answers with an HTML page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        self.limit = settings.MAX_REQUEST_BODY_BYTES
        self.content_limit = settings.MAX_CONTENT_REQUEST_BYTES

    def refusal(self, request: HttpRequest) -> JsonResponse | None:
        length = request.META.get("CONTENT_LENGTH")
        if not length:
            return None
        try:
            size = int(length)
        except ValueError:
            return error_response("bad_request", "Invalid Content-Length header.", 400)
        limit = self.content_limit if takes_content(request.path) else self.limit
        if size > limit:
            return JsonResponse(request_too_large_body(limit), status=413)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PATHS):
            return None
        logger.exception("Unhandled error on %s", request.path, exc_info=exception)
        return error_response("internal_error", "Internal server error.", 500)


class UrlTextMiddleware(GateMiddleware):
    """Answer 400 in the error shape for a NUL character in the path or query string,
    before any view passes it to the database (see `llmwrapper.parsers.url_problem`)."""

    def refusal(self, request: HttpRequest) -> JsonResponse | None:
        from llmwrapper.parsers import url_problem

        problem = url_problem(request)
        if problem is None:
            return None
        return error_response("validation_error", "Invalid request: see details.", 400, problem)


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


# Host checks. Django applies ALLOWED_HOSTS only where `request.get_host()` is called
# (the admin), so without these the API, `/metrics` and the WebSocket would answer any
# Host: a DNS-rebinding page could then read `/metrics`, which trusts 127.0.0.1, through
# a victim's browser. `/health` answers any Host: load balancers probe it by address,
# and it tells nothing.
HOST_CHECK_EXEMPT_PATHS = frozenset({"/health"})


def host_allowed(host: str | None) -> bool:
    """Whether a Host header value (port included) is one ALLOWED_HOSTS accepts.

    No header at all passes: browsers, the only way to ride a victim's network, always
    send one. Verdicts are cached per distinct value and setting.
    """
    if host is None:
        return True
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # as Django does
    return _host_verdict(host, tuple(allowed))


@functools.lru_cache(maxsize=1024)
def _host_verdict(host: str, allowed: tuple[str, ...]) -> bool:
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


def _host_header(headers: Mapping[str, str]) -> str | None:
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in headers:
        return headers["HTTP_X_FORWARDED_HOST"]
    return headers.get("HTTP_HOST")


def scope_host(scope: Mapping[str, Any]) -> str | None:
    """The Host an ASGI scope was asked for (repeated headers joined, as Django does)."""
    wanted = b"x-forwarded-host" if settings.USE_X_FORWARDED_HOST else b"host"
    values = _header_values(scope.get("headers", ()), wanted)
    if not values and wanted != b"host":
        values = _header_values(scope.get("headers", ()), b"host")
    return ",".join(values) if values else None


def _header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [value.decode("latin1") for key, value in headers if key.lower() == name]


def invalid_host_response() -> JsonResponse:
    return error_response("invalid_host", "Invalid Host header.", 400)


class AllowedHostsMiddleware(GateMiddleware):
    """Answer 400 (`invalid_host`) to a request whose Host is not in ALLOWED_HOSTS."""

    def refusal(self, request: HttpRequest) -> JsonResponse | None:
        if host_allowed(_host_header(request.META)) or request.path in HOST_CHECK_EXEMPT_PATHS:
            return None
        return invalid_host_response()


AsgiApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]],
    Awaitable[None],
]


class AllowedHostsWebSocketMiddleware:
    """ASGI middleware refusing WebSocket handshakes whose Host is not in ALLOWED_HOSTS.

    The handshake is closed before it is accepted, which clients see as HTTP 403.
    """

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict]],
        send: Callable[[dict], Awaitable[None]],
    ) -> None:
        if scope["type"] == "websocket" and not host_allowed(scope_host(scope)):
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)
