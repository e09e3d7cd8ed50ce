"""One log line and the HTTP metrics for every request, and its `X-Request-ID`.

The middleware is first in MIDDLEWARE, so its latency covers the whole stack and every
response (413s and 500s of the other middleware too) carries the request id. It is
async-capable: under ASGI a sync-only middleware would move every request through a
worker thread.

Streaming responses (SSE) finish after this middleware has returned, and the model is
called while they stream; their line is logged and their metrics recorded when the
stream ends, from a wrapper around the response's iterator, which also puts the
request's record back in the context while it pulls each chunk.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from llmwrapper.observability import metrics, tracing
from llmwrapper.observability.context import RequestRecord, current_request
from llmwrapper.observability.logging import loggable_content
from llmwrapper.observability.redaction import redact_text

REQUEST_ID_HEADER = "X-Request-ID"
MAX_LOGGED_QUERY_CHARS = 1000
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

request_logger = logging.getLogger("llmwrapper.request")


def request_id_for(request: HttpRequest) -> str:
    """The caller's X-Request-ID when it is safe to log and echo, else a new one."""
    incoming = request.META.get("HTTP_X_REQUEST_ID")
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return os.urandom(16).hex()  # as unique as a uuid4, for a fraction of its cost


_PATH_CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


@functools.lru_cache(maxsize=1024)  # bounded by the URL patterns, not by paths
def route_template(route: str) -> str:
    """`api/v1/chats/<uuid:chat_pk>/messages` -> `/api/v1/chats/{chat_pk}/messages`."""
    route = _PATH_CONVERTER.sub(r"{\1}", route)
    route = _REGEX_GROUP.sub(r"{\1}", route)
    return "/" + route.replace("^", "").replace("$", "").replace("\\Z", "")


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return "unmatched"  # 404s of unknown paths, and answers given before routing
    return route_template(match.route)


class Exchange:
    """One request in flight: what is known about it until its line is logged.

    `request` is Django's, or for a request the hot lane answers (`llmwrapper.lane`)
    an object with the attributes read here (`method`, `path`, `META`, `api_key`)."""

    __slots__ = ("log_content", "record", "request", "request_body", "started")

    def __init__(self, request: HttpRequest) -> None:
        self.started = time.perf_counter()
        self.request = request
        self.record = RequestRecord(request_id_for(request))
        self.log_content: int = settings.LOG_CONTENT_MAX_CHARS if settings.LOG_CONTENT else 0
        self.request_body = self._read_body() if self.log_content else None

    def _read_body(self) -> str | None:
        try:
            # Read before the view: once a parser has consumed the stream, `body` is gone.
            body = self.request.body
        except Exception:  # too large, or already read: the view reports that itself
            return None
        return loggable_content(body, self.log_content) if body else None

    def respond(self, response: HttpResponseBase) -> HttpResponseBase:
        response[REQUEST_ID_HEADER] = self.record.request_id
        method = metrics.method_label(self.request.method or "")
        route = route_of(self.request)
        tracing.name_server_span(method, route)
        if not response.streaming:
            body = None
            if self.log_content:
                body = loggable_content(getattr(response, "content", b""), self.log_content)
            self.finish(response.status_code, method, route, response_body=body)
        elif response.is_async:  # type: ignore[attr-defined]
            response.streaming_content = self.streamed(  # type: ignore[attr-defined]
                response.streaming_content,  # type: ignore[attr-defined]
                response.status_code,
                method,
                route,
            )
        else:
            response.streaming_content = self._sync_stream(  # type: ignore[attr-defined]
                response.streaming_content,  # type: ignore[attr-defined]
                response.status_code,
                method,
                route,
            )
        return response

    async def streamed(
        self, content: AsyncIterator[bytes], status: int, method: str, route: str
    ) -> AsyncIterator[bytes]:
        """`content`, its line logged and its metrics recorded when it ends."""
        outcome = "interrupted"  # unless it ends: the client went away (or was cancelled)
        captured = _Capture(self.log_content)
        try:
            while True:
                # The model is called while the stream is pulled, outside the middleware:
                # the record is made current for each pull, never across a `yield`.
                token = current_request.set(self.record)
                try:
                    chunk = await content.__anext__()
                except StopAsyncIteration:
                    outcome = "completed"
                    break
                finally:
                    current_request.reset(token)
                captured.add(chunk)
                yield chunk
        except Exception:
            outcome = "failed"
            raise
        finally:
            try:
                aclose = getattr(content, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                self.finish(status, method, route, stream=outcome, response_body=captured.text())

    def _sync_stream(
        self, content: Iterator[bytes], status: int, method: str, route: str
    ) -> Iterator[bytes]:
        outcome = "interrupted"
        captured = _Capture(self.log_content)
        try:
            for chunk in content:
                captured.add(chunk)
                yield chunk
            outcome = "completed"
        except Exception:
            outcome = "failed"
            raise
        finally:
            self.finish(status, method, route, stream=outcome, response_body=captured.text())

    def finish(
        self,
        status: int,
        method: str,
        route: str,
        *,
        stream: str | None = None,
        response_body: str | None = None,
    ) -> None:
        elapsed = time.perf_counter() - self.started
        metrics.observe_http_request(method, route, str(status), elapsed)
        level = logging.ERROR if status >= 500 else logging.INFO
        if not request_logger.isEnabledFor(level):
            return
        latency_ms = round(elapsed * 1000, 2)
        path = self.request.path
        fields = self._fields(method, route, path, status, latency_ms)
        if stream is not None:
            fields["stream"] = stream
        if self.log_content:
            fields["request_body"] = self.request_body
            fields["response_body"] = response_body
        # makeRecord + handle is what `log()` does, minus finding the caller's source line
        # by walking the stack, which would always point here anyway.
        record = request_logger.makeRecord(
            request_logger.name,
            level,
            __file__,
            0,
            "%s %s %s %.1fms",
            (method, path, status, latency_ms),
            None,
            extra=fields,
        )
        request_logger.handle(record)

    def _fields(
        self, method: str, route: str, path: str, status: int, latency_ms: float
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "request_id": self.record.request_id,
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "latency_ms": latency_ms,
            "key_prefix": None,
            "subtenant_id": None,
        }
        query = self.request.META.get("QUERY_STRING")
        if query:
            # Redacted before the cut, so that a credential straddling it is still found.
            query = redact_text(query)
            if len(query) > MAX_LOGGED_QUERY_CHARS:
                query = query[:MAX_LOGGED_QUERY_CHARS] + "…[truncated]"
            fields["query"] = query
        # Set by ApiKeyAuthentication: the key's public prefix and its subtenant only.
        key = getattr(self.request, "api_key", None)
        if key is not None:
            fields["key_prefix"] = key.prefix
            fields["subtenant_id"] = str(key.subtenant_id) if key.subtenant_id else None
        calls = self.record.llm_calls
        if calls:
            last = calls[-1]
            fields["provider"] = last.provider
            fields["model"] = last.model
            fields["input_tokens"] = sum(c.input_tokens for c in calls)
            fields["output_tokens"] = sum(c.output_tokens for c in calls)
            fields["llm_calls"] = len(calls)
            errors = [c.error_type for c in calls if c.error_type]
            if errors:
                fields["llm_error"] = errors[-1]
        return fields


class _Capture:
    """The beginning of a streamed body, for content logging."""

    __slots__ = ("limit", "parts", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes | str) -> None:
        if self.size <= self.limit:
            data = chunk.encode() if isinstance(chunk, str) else chunk
            self.parts.append(data)
            self.size += len(data)

    def text(self) -> str | None:
        if not self.limit or not self.parts:
            return None
        return loggable_content(b"".join(self.parts), self.limit)


class RequestObservabilityMiddleware:
    async_capable = True
    sync_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if self.is_async:
            return self.__acall__(request)
        exchange = Exchange(request)
        token = current_request.set(exchange.record)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(token)
        return exchange.respond(response)  # type: ignore[arg-type]

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        exchange = Exchange(request)
        token = current_request.set(exchange.record)
        try:
            response = await self.get_response(request)  # type: ignore[misc]
        finally:
            current_request.reset(token)
        return exchange.respond(response)
