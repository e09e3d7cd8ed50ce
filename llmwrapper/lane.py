"""The hot lane: the common case of the hottest endpoints, answered before Django.

A third of a completion's CPU went to the machinery around its own work (validating
the body, running the turn, formatting the answer): Django's request and response
objects, URL resolution, the middleware stack and DRF's view. The lane answers a
request to one of its routes itself, on the event loop, when nothing about the request
needs that machinery:

- `POST` to a route's path (exact, or a pattern such as a chat's messages), with no
  query string and no root path;
- no header given twice, no `Origin` (CORS is Django's), a JSON body (`Content-Type:
  application/json`, within the size limits) that the service's JSON rules accept,
  and an `Accept` of JSON (or none);
- a Host that ALLOWED_HOSTS accepts, and no https redirect due;
- a key this process remembers (a bearer token, or `x-api-key` where the route's view
  takes it), active, whose use was recorded within
  API_KEY_TOUCH_INTERVAL and that no request-rate limit counts (the checks that need
  no I/O, `auth.checks_in_memory`), and content logging off.

Anything else, and whatever the route declines before it starts work (a body that does
not validate, a header it leaves to Django), goes to Django with the body already read
replayed, and is answered there exactly as before. What the lane answers carries the
headers and the body Django's answer would carry (a test compares the two), with the
same request log line, metrics, trace span name and open-streams count; the request's
sync work runs on a thread of its own, as under Django's handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from corsheaders.conf import conf as cors_conf
from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from llmwrapper.api import validated
from llmwrapper.asgi_handler import ReusedThreadsASGIHandler
from llmwrapper.auth import ApiKeyAuthentication
from llmwrapper.errors import exception_handler
from llmwrapper.middleware import SecurityHeadersMiddleware, host_allowed, scope_host
from llmwrapper.observability import tracing
from llmwrapper.observability.context import current_request
from llmwrapper.observability.middleware import Exchange
from llmwrapper.parsers import UnsafeBodyError, parse_json
from llmwrapper.sse import counted
from tenants import limits
from tenants.models import ApiKey
from tenants.selectors import api_key_remembered
from tenants.services import api_key_touch_due

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})
_JSON_ACCEPTS = frozenset({None, b"*/*", b"application/json"})


@dataclass(slots=True)
class Call:
    """A request the lane took: its caller, its parsed JSON body, its headers (names in
    lower case) and the parameters of its path."""

    key: ApiKey
    data: Any
    headers: dict[bytes, bytes]
    params: dict[str, str]


@dataclass(slots=True)
class Answer:
    """A route's answer: a body, or the chunks of an event stream."""

    status: int
    body: bytes = b""
    chunks: AsyncGenerator[bytes, None] | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint of the lane: `start` answers a request as `view` (the DRF view
    Django routes the path to) would, or returns None to leave it to Django, which it
    may only do before it starts any work. What `start` raises is answered by `error`
    (the view's error shape; by default the API's, `api_error_answer`)."""

    start: Callable[[Call], Awaitable[Answer | None]]
    view: type[APIView]
    # The route's pattern as metrics, logs and traces name it; None: the path itself.
    template: str | None = None
    # Request headers (lower case) the route leaves to Django, e.g. X-Chat-ID.
    declines: frozenset[bytes] = frozenset()
    error: Callable[[Exception], Answer] | None = None

    def answer_error(self, exc: Exception) -> Answer:
        return self.error(exc) if self.error is not None else api_error_answer(exc, self.view)


def valid_fields(call: Call, serializer: type[Serializer]) -> dict[str, Any] | None:
    """The call's body validated by `serializer`; None when it is not valid (the view
    then says what is wrong, in its own order)."""
    if not isinstance(call.data, dict):
        return None
    try:
        return validated(serializer, call.data)
    except ValidationError:
        return None


def json_answer(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Answer:
    """`body` rendered as DRF renders a JSON response, with the view's extra headers."""
    return Answer(status, _RENDERER.render(body), headers=[_JSON, *_encoded(headers)])


def stream_answer(
    chunks: AsyncGenerator[bytes, None], headers: Mapping[str, str] | None = None
) -> Answer:
    """An event stream of encoded chunks, with the headers of `sse.stream_response`."""
    return Answer(200, chunks=chunks, headers=[*_STREAM, *_encoded(headers)])


def _encoded(headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), str(v).encode("latin1")) for k, v in (headers or {}).items()]


def api_error_answer(exc: Exception, view: type[APIView]) -> Answer:
    """`exc` in the API's error shape, as the API's exception handler answers it."""
    response = exception_handler(exc, {"view": view})
    return json_answer(response.status_code, response.data, _extra_headers(response))


def _extra_headers(response: Response) -> dict[str, str]:
    return {k: v for k, v in response.items() if k.lower() != "content-type"}


_RENDERER = JSONRenderer()
_JSON = (b"content-type", b"application/json")
_STREAM = (
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class HotLane:
    """The ASGI app in front of Django's: takes its routes' common case, passes the rest."""

    def __init__(
        self,
        django: ReusedThreadsASGIHandler,
        routes: Mapping[str, Route],
        patterns: Sequence[tuple[re.Pattern[str], Route]] = (),
    ) -> None:
        self.django = django
        self.routes = routes
        self.patterns = patterns

    def _route(self, path: str) -> tuple[Route | None, dict[str, str]]:
        route = self.routes.get(path)
        if route is not None:
            return route, {}
        for pattern, candidate in self.patterns:
            match = pattern.fullmatch(path)
            if match is not None:
                return candidate, match.groupdict()
        return None, {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, params = self._route(scope["path"]) if scope["type"] == "http" else (None, {})
        if (
            route is None
            or scope["method"] != "POST"
            or scope.get("query_string")
            or scope.get("root_path")
        ):
            return await self.django(scope, receive, send)
        headers = _headers(scope)
        if headers is None or not route.declines.isdisjoint(headers):
            return await self.django(scope, receive, send)
        key = _caller(scope, headers, route.view)
        if key is None:
            return await self.django(scope, receive, send)
        limit = settings.MAX_CONTENT_REQUEST_BYTES
        body, more = await _read_body(receive, limit)
        if body is None:
            return None  # the client left before sending its body
        data = _parsed(body) if not more and len(body) <= limit else None
        call = Call(key, data, headers, params)
        if data is None or not await self._answer(scope, route, call, receive, send):
            await self.django(scope, _replaying(body, more, receive), send)
        return None

    async def _answer(
        self, scope: Scope, route: Route, call: Call, receive: Receive, send: Send
    ) -> bool:
        """Answer `call` on its route; False when it is Django's after all."""
        exchange = Exchange(_Seen(scope["path"], call.headers, call.key))
        token = current_request.set(exchange.record)
        try:
            async with self.django.request_thread(scope):
                answered = await _until_disconnect(
                    receive, self._respond(scope, route, call, exchange, send)
                )
        finally:
            current_request.reset(token)
        return answered is not False

    async def _respond(
        self, scope: Scope, route: Route, call: Call, exchange: Exchange, send: Send
    ) -> bool:
        try:
            answer = await route.start(call)
        except Exception as exc:
            answer = route.answer_error(exc)
        if answer is None:
            return False
        path = route.template or exchange.request.path
        tracing.name_server_span("POST", path)
        cors = re.match(cors_conf.CORS_URLS_REGEX, exchange.request.path) is not None
        headers = [
            *answer.headers,
            *view_headers(route.view, cors),
            *security_headers(_is_secure(scope, call.headers)),
            (b"x-request-id", exchange.record.request_id.encode()),
        ]
        if answer.chunks is None:
            # Logged before the answer is sent, as Django's middleware does.
            exchange.finish(answer.status, "POST", path)
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})
            return True
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        # Logged when the stream ends (or the client leaves), as for Django's streams.
        chunks = exchange.streamed(counted(answer.chunks), answer.status, "POST", path)
        # Both closed when the client leaves between two chunks (the turn's stream ends
        # at once, not when the collector finds it); a no-op once they ran to their end.
        async with contextlib.aclosing(answer.chunks), contextlib.aclosing(chunks):
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return True


def _parsed(body: bytes) -> Any:
    """The body as JSON, None when it is not JSON the service accepts (Django says why)."""
    try:
        return parse_json(body)
    except UnsafeBodyError:
        return None


async def _until_disconnect(receive: Receive, answering: Awaitable[bool]) -> bool | None:
    """`answering`, cancelled when the client leaves first (None then), as Django's
    handler does: a stream's turn ends as cancelled, its record kept."""
    task = asyncio.current_task()
    assert task is not None
    done = False

    async def listen() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not done:
            task.cancel()

    listener = asyncio.create_task(listen())
    try:
        return await answering
    except asyncio.CancelledError:
        if listener.done() and task.uncancel() == 0:
            return None  # the client left: nobody to answer
        raise
    finally:
        done = True
        listener.cancel()


def _headers(scope: Scope) -> dict[bytes, bytes] | None:
    """The request's headers by lower-case name; None when the lane leaves it to
    Django (a header given twice, CORS, a body or an answer other than JSON)."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        name = name.lower()
        if name in headers:
            return None
        headers[name] = value
    if (
        b"origin" in headers
        or headers.get(b"content-type", b"").lower() not in _JSON_TYPES
        or headers.get(b"accept") not in _JSON_ACCEPTS
    ):
        return None
    return headers


def _caller(scope: Scope, headers: dict[bytes, bytes], view: type[APIView]) -> ApiKey | None:
    """The request's key when checking it and answering needs nothing but memory."""
    if settings.LOG_CONTENT or not host_allowed(scope_host(scope)):
        return None
    if settings.SECURE_SSL_REDIRECT and not _is_secure(scope, headers):
        return None
    raw = _raw_key(headers, view)
    key = api_key_remembered(raw_key=raw) if raw else None
    if key is None or (key.subtenant is not None and not key.subtenant.is_active):
        return None
    if api_key_touch_due(key=key, interval_seconds=settings.API_KEY_TOUCH_INTERVAL):
        return None
    return None if limits.request_checks_needed(key) else key


def _raw_key(headers: dict[bytes, bytes], view: type[APIView]) -> str | None:
    """The key the view's authenticator reads from these headers (a bearer token, or
    `x-api-key` where it takes that); None when it has another kind of authenticator."""
    authenticator = _authenticator(view)
    if authenticator is None:
        return None
    x_api_key = headers.get(b"x-api-key")
    return authenticator.key_in(
        headers.get(b"authorization", b"").decode("latin1"),
        x_api_key.decode("latin1") if x_api_key is not None else None,
    )


@functools.cache
def _authenticator(view: type[APIView]) -> type[ApiKeyAuthentication] | None:
    """The view's one authenticator when it is an API key's (as `auth.checks_in_memory`
    asks)."""
    classes = view.authentication_classes
    if len(classes) == 1 and issubclass(classes[0], ApiKeyAuthentication):
        return classes[0]
    return None


def _is_secure(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """`HttpRequest.is_secure()` for this request, SECURE_PROXY_SSL_HEADER included."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = headers.get(meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode())
        if value is not None:
            return value.decode("latin1").split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") == "https"


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, bool]:
    """The request's body and whether more of it is still unread (it passed `limit`);
    None when the client left first."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        part = message.get("body", b"")
        parts.append(part)
        size += len(part)
        more = bool(message.get("more_body"))
        if not more or size > limit:
            return b"".join(parts), more


def _replaying(body: bytes, more: bool, receive: Receive) -> Receive:
    """`receive` that first gives back the body the lane already read."""
    pending = [{"type": "http.request", "body": body, "more_body": more}]

    async def replay() -> dict[str, Any]:
        return pending.pop() if pending else await receive()

    return replay


class _Seen:
    """What the request log reads of a request (`Exchange`), for one the lane took."""

    __slots__ = ("META", "api_key", "method", "path")

    def __init__(self, path: str, headers: dict[bytes, bytes], key: ApiKey) -> None:
        self.method = "POST"
        self.path = path
        self.api_key = key
        request_id = headers.get(b"x-request-id")
        self.META = {"HTTP_X_REQUEST_ID": request_id.decode("latin1")} if request_id else {}


@functools.cache
def view_headers(view: type[APIView], cors: bool) -> tuple[tuple[bytes, bytes], ...]:
    """What DRF's view and the CORS middleware add to each of the view's answers:
    `Allow`, and `Vary` (`Accept` when the view has several renderers, `origin` where
    CORS applies)."""
    instance = view()
    instance.setup(HttpRequest())  # as Django does per request: HEAD where GET is
    headers = instance.default_response_headers
    # In the order they reach the answer: DRF's Vary, then Allow, then CORS's Vary
    # (added to DRF's when there is one).
    listed = [("Allow", headers["Allow"])]
    if "Vary" in headers:
        listed.insert(0, ("Vary", headers["Vary"] + (", origin" if cors else "")))
    elif cors:
        listed.append(("Vary", "origin"))
    return tuple((name.lower().encode(), value.encode("latin1")) for name, value in listed)


@functools.cache
def security_headers(secure: bool) -> tuple[tuple[bytes, bytes], ...]:
    """The headers SecurityHeadersMiddleware adds to an API answer (recomputed when a
    setting changes)."""
    request = HttpRequest()
    request.path = request.path_info = "/v1/"
    request.is_secure = lambda: secure  # type: ignore[method-assign]
    answered = HttpResponse()
    present = set(answered.headers)
    SecurityHeadersMiddleware(lambda _: answered).handle_sync(request)
    return tuple(
        (name.lower().encode(), value.encode("latin1"))
        for name, value in answered.items()
        if name not in present
    )


def _settings_changed(**kwargs: Any) -> None:
    security_headers.cache_clear()
    view_headers.cache_clear()


setting_changed.connect(_settings_changed)
