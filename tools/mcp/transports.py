"""Opening an MCP session's streams over stdio, WebSocket, SSE or streamable HTTP.

HTTP and WebSocket URLs go through the caller's guard first; redirects are refused on
every transport (the target was not vetted).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

import httpx2
from mcp import StdioServerParameters, stdio_client
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tools.mcp.config import McpServerConfig
from tools.mcp.failures import guard_reason
from tools.mcp.websocket import REDIRECT_STATUSES, websocket_client

# An SSE stream or a tool's response may legitimately stay silent for minutes.
HTTP_READ_TIMEOUT_S = 300.0


class HttpClientFactory(Protocol):
    """Same shape as the SDK's ``McpHttpClientFactory``; return an ``httpx2.AsyncClient``
    (for instance one that only reaches allowed addresses)."""

    def __call__(
        self,
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient: ...


# Called with the server URL before every HTTP/WebSocket connect; raise to refuse it.
# It returns the addresses it vetted (or None): a WebSocket connection is pinned to them,
# so a DNS answer that changes after the check cannot move it. (HTTP clients from the
# factory pin their own connections: see tools.netguard.GuardedTransport.)
UrlGuard = Callable[[str], Awaitable[Sequence[str] | None]]


class _GuardRefused(Exception):
    is_guard_refusal = True


class _RedirectRefused(Exception):
    """An HTTP transport got a redirect answer; it is never followed."""

    def __init__(self, status: int) -> None:
        super().__init__(f"redirect answer (HTTP {status}) not followed")
        self.redirect_status = status


class HttpStatusRecorder(Protocol):
    """Where the last HTTP error or redirect status is kept, for clearer errors."""

    http_status: int | None


@asynccontextmanager
async def open_transport(
    config: McpServerConfig,
    conn: HttpStatusRecorder,
    *,
    url_guard: UrlGuard | None,
    http_client_factory: HttpClientFactory,
) -> AsyncIterator[TransportStreams]:
    """The session's pair of streams over ``config``'s transport; the HTTP status of a
    refused request or redirect is kept on ``conn``."""
    if config.transport == "stdio":
        assert config.command is not None
        # No shell: command and args go to exec as they are. The SDK adds only
        # HOME, LOGNAME, PATH, SHELL, TERM and USER to the env we give.
        params = StdioServerParameters(
            command=config.command, args=list(config.args), env=dict(config.env or {})
        )
        async with stdio_client(params) as streams:
            yield streams
        return

    assert config.url is not None
    addresses = await _vetted_addresses(url_guard, config.url)
    headers = config.request_headers()
    if config.transport == "websocket":
        async with websocket_client(
            config.url, headers, config.timeout_s, addresses=addresses
        ) as streams:
            yield streams
        return

    factory = _no_redirect_factory(http_client_factory, conn)
    timeout = httpx2.Timeout(config.timeout_s, read=max(HTTP_READ_TIMEOUT_S, config.timeout_s))
    if config.transport == "sse":
        async with sse_client(
            config.url,
            headers=headers,
            timeout=config.timeout_s,
            sse_read_timeout=timeout.read or HTTP_READ_TIMEOUT_S,
            httpx_client_factory=factory,
        ) as streams:
            yield streams
        return
    http_client = factory(headers=headers, timeout=timeout)
    async with http_client, streamable_http_client(config.url, http_client=http_client) as s:
        yield s


async def _vetted_addresses(url_guard: UrlGuard | None, url: str) -> Sequence[str] | None:
    """The addresses the guard vetted for ``url`` (None: resolve as usual); a refusal
    raises ``_GuardRefused``."""
    if url_guard is None:
        return None
    try:
        vetted = await url_guard(url)
    except Exception as exc:
        raise _GuardRefused(guard_reason(exc)) from exc
    return list(vetted) if isinstance(vetted, list | tuple) and vetted else None


def _no_redirect_factory(
    http_client_factory: HttpClientFactory, conn: HttpStatusRecorder
) -> HttpClientFactory:
    """``http_client_factory``'s clients, refusing redirects and recording error
    statuses on ``conn``."""

    def factory(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        client = http_client_factory(headers=headers, timeout=timeout, auth=auth)
        client.follow_redirects = False

        async def record_status(response: httpx2.Response) -> None:
            if response.status_code >= 400 or response.status_code in REDIRECT_STATUSES:
                conn.http_status = response.status_code
            if response.status_code in REDIRECT_STATUSES:
                # The SDK follows redirects within the server's origin itself, whatever
                # the client says; failing here means no redirect is ever followed.
                raise _RedirectRefused(response.status_code)

        client.event_hooks["response"].append(record_status)
        return client

    return factory
