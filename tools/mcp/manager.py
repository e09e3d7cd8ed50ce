"""Per-process MCP client: lazily opened, reused and re-established connections.

Why a private event loop thread: the SDK's transports are async context managers
whose task groups and cancel scopes belong to the task that entered them, and under
Django every ``async_to_sync`` call may run on a new, short-lived event loop. So each
connection is owned by one long-lived task on the manager's own loop (started lazily,
restarted after ``fork``); public coroutines hop onto that loop and back. Callers can
therefore use one manager from any loop or thread, connections outlive the loops of
the requests that opened them, and ``close()``/``aclose()`` work from anywhere.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import anyio
import httpx2
import mcp_types
from mcp import Client, MCPError, StdioServerParameters, stdio_client
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tools.mcp.config import McpServerConfig
from tools.mcp.errors import (
    McpConnectionError,
    McpError,
    McpTimeoutError,
    McpToolNotFoundError,
)
from tools.mcp.failures import connect_failure, guard_reason, is_connection_loss, op_failure
from tools.mcp.websocket import REDIRECT_STATUSES, websocket_client

logger = logging.getLogger(__name__)

T = TypeVar("T")
CLIENT_INFO = mcp_types.Implementation(name="llmwrapper", version="1")
# An SSE stream or a tool's response may legitimately stay silent for minutes.
HTTP_READ_TIMEOUT_S = 300.0
# Headroom over the SDK's own request timeout, so its courtesy cancel goes out first.
CALL_GRACE_S = 5.0
MAX_TOOL_PAGES = 100


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


# Vendors accept tool names matching ^[a-zA-Z0-9_-]{1,64}$.
QUALIFIED_NAME_SEPARATOR = "__"
_UNSAFE_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_TOOL_NAME = 64


def qualified_tool_name(server: str, tool: str) -> str:
    """``<server>__<tool>``, made safe for the vendors' tool-name rule.

    Characters outside ``[a-zA-Z0-9_-]`` become ``_``; a name over 64 characters is cut
    and ends in a hash of the full name, so it stays unique. Do not parse it back:
    keep the ``McpTool`` (it has ``server`` and ``name``) to route a model's call.
    """
    raw = f"{server}{QUALIFIED_NAME_SEPARATOR}{tool}"
    safe = _UNSAFE_CHARS.sub("_", raw)
    if len(safe) > _MAX_TOOL_NAME:
        safe = f"{safe[: _MAX_TOOL_NAME - 9]}_{_short_hash(raw)}"
    return safe


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class McpTool:
    server: str
    name: str  # the server's own name, for call_tool
    qualified_name: str  # the name to show a model
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class McpToolResult:
    content: list[dict[str, Any]]  # MCP content blocks as plain JSON (text, image, ...)
    is_error: bool
    structured: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return "\n".join(b["text"] for b in self.content if b.get("type") == "text")


def to_tools(server: str, tools: list[mcp_types.Tool]) -> list[McpTool]:
    result: list[McpTool] = []
    seen: set[str] = set()
    for tool in tools:
        qualified = qualified_tool_name(server, tool.name)
        if qualified in seen:  # "a.b" and "a_b" sanitize alike
            qualified = f"{qualified[: _MAX_TOOL_NAME - 9]}_{_short_hash(tool.name)}"
        seen.add(qualified)
        result.append(
            McpTool(
                server=server,
                name=tool.name,
                qualified_name=qualified,
                description=tool.description or "",
                input_schema=tool.input_schema or {"type": "object", "properties": {}},
            )
        )
    return result


def to_result(result: mcp_types.CallToolResult) -> McpToolResult:
    structured = result.structured_content
    if structured is not None and not isinstance(structured, dict):
        # 2026-07-28 allows any JSON value here; keep the documented dict shape.
        structured = {"result": structured}
    return McpToolResult(
        content=[
            block.model_dump(mode="json", by_alias=True, exclude_none=True)
            for block in result.content
        ],
        is_error=bool(result.is_error),
        structured=structured,
    )


class _Connection:
    """One MCP session, owned by the task that runs ``_run`` on the manager loop."""

    def __init__(self, config: McpServerConfig, manager: McpClientManager) -> None:
        self.config = config
        self.client: Client | None = None
        self.tools: dict[str, mcp_types.Tool] | None = None
        self.last_used = time.monotonic()
        self.in_use = 0  # requests in flight; a busy connection is never idle
        # Last HTTP error or redirect status, for clearer errors.
        self.http_status: int | None = None
        self._manager = manager
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def finished(self) -> bool:
        return self._stop.is_set() or (self._task is not None and self._task.done())

    async def connect(self) -> Client:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mcp:{self.config.name}")
        # Shielded: one waiter giving up must not cancel a connect others share.
        await asyncio.shield(self._ready)
        if self.client is None:  # it was open, and has ended since
            raise ConnectionResetError("MCP connection closed")
        self.last_used = time.monotonic()
        return self.client

    async def _run(self) -> None:
        error: BaseException | None = None
        try:
            with anyio.CancelScope() as scope:
                # One scope for the whole life: a deadline for connecting, lifted once
                # connected (a nested fail_after could not be exited before the
                # transport's own scopes).
                scope.deadline = anyio.current_time() + self.config.timeout_s
                transport = self._manager._open_transport(self.config, self)
                async with Client(
                    transport,
                    mode=self._manager._mode,
                    cache=None,  # the tool list must follow the server
                    read_timeout_seconds=self.config.timeout_s,
                    client_info=CLIENT_INFO,
                ) as client:
                    scope.deadline = math.inf
                    self.client = client
                    self._ready.set_result(None)
                    await self._stop.wait()
            if scope.cancelled_caught and not self._ready.done():
                error = TimeoutError()
        except Exception as exc:  # reported to the waiters (or, once connected, logged)
            error = exc
        finally:
            self.client = None
            self._stop.set()
            if not self._ready.done():
                self._ready.set_exception(connect_failure(self.config, error, self.http_status))
            elif error is not None:
                logger.info(
                    "MCP connection to %r ended: %s", self.config.name, type(error).__name__
                )

    async def close(self, timeout_s: float = 10) -> None:
        self._stop.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            self._task.cancel()
        except Exception:  # already reported by _run
            logger.debug("closing MCP connection %r failed", self.config.name, exc_info=True)

    async def list_tools(self) -> list[mcp_types.Tool]:
        client = await self.connect()
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_TOOL_PAGES):  # a paginator that never ends cannot hang us
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = {tool.name: tool for tool in tools}
        return tools

    async def find_tool(self, name: str) -> mcp_types.Tool | None:
        # Servers report an unknown tool as an ordinary error result, which a model
        # would read as a tool failure; checking the listing lets us say "not found".
        if self.tools is None or name not in self.tools:
            await self.list_tools()
        assert self.tools is not None
        return self.tools.get(name)


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._main, name="mcp-client-loop", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def stop(self, *, join: bool = True) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if join and threading.current_thread() is not self.thread:
            self.thread.join(timeout=15)


class McpClientManager:
    """Opens, caches and reuses MCP sessions; one instance per process.

    Connections are keyed by server name and ``config.fingerprint()``, so an edited
    config gets a new connection and two tenants' servers with the same name do not
    share one. A call that fails because the connection is gone (closed stream,
    refused connection, expired HTTP session) is retried once on a fresh connection.
    Connections idle for ``idle_timeout_s`` are closed.
    """

    def __init__(
        self,
        *,
        http_client_factory: HttpClientFactory | None = None,
        url_guard: UrlGuard | None = None,
        idle_timeout_s: float = 600,
        mode: Literal["auto", "legacy"] = "auto",
    ) -> None:
        """``mode="auto"`` probes for the stateless 2026 protocol and falls back to the
        initialize handshake; ``"legacy"`` always uses the handshake."""
        self._mode = mode
        self._http_client_factory: HttpClientFactory = http_client_factory or create_mcp_http_client
        self._url_guard = url_guard
        self._idle_timeout_s = idle_timeout_s
        self._lock = threading.Lock()
        self._runner: _LoopThread | None = None
        self._atexit_registered = False
        # Touched only on the manager loop.
        self._connections: dict[tuple[str, str], _Connection] = {}
        self._closing: set[asyncio.Task[None]] = set()

    # Public API: every coroutine runs on the manager loop.

    async def list_tools(self, config: McpServerConfig) -> list[McpTool]:
        """The server's tools, named ``<server>__<tool>`` for the model."""

        async def op(conn: _Connection) -> list[McpTool]:
            return to_tools(config.name, await conn.list_tools())

        return await self._submit(self._with_retry(config, op, config.timeout_s))

    async def call_tool(
        self,
        config: McpServerConfig,
        tool_name: str,
        arguments: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> McpToolResult:
        """Call ``tool_name`` (the server's own name, not the qualified one).

        A tool that fails returns ``is_error=True``; exceptions are for the
        connection, an unknown tool, a timeout or a protocol error.
        """
        timeout = timeout_s or config.timeout_s
        args = dict(arguments or {})

        async def op(conn: _Connection) -> McpToolResult:
            if await conn.find_tool(tool_name) is None:
                raise McpToolNotFoundError(
                    f"MCP server '{config.name}' has no tool named '{tool_name[:64]}'",
                    details={"server": config.name, "tool": tool_name[:64]},
                )
            client = await conn.connect()
            result = await client.call_tool(tool_name, args, read_timeout_seconds=timeout)
            return to_result(result)

        return await self._submit(self._with_retry(config, op, timeout))

    async def probe(self, config: McpServerConfig) -> list[McpTool]:
        """Connect afresh, handshake and list tools, then disconnect: validates a
        server before it is registered. Raises ``McpError`` subclasses."""
        return await self._submit(self._probe(config))

    async def close(self, server: str | McpServerConfig) -> None:
        """Close the connections of a server name (all its configs) or of one config."""
        await self._submit(self._close_matching(server))

    async def aclose(self) -> None:
        """Close every connection and stop the manager loop (a later call restarts it)."""
        runner = self._take_runner()
        if runner is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._close_matching(None), runner.loop)
        await asyncio.wrap_future(future)
        if _running_loop() is runner.loop:
            runner.stop(join=False)
        else:
            await asyncio.to_thread(runner.stop)

    def shutdown(self) -> None:
        """``aclose`` for synchronous code (atexit, test teardown)."""
        runner = self._take_runner()
        if runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._close_matching(None), runner.loop).result(30)
        runner.stop()

    # Internals.

    async def _submit(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._ensure_loop()
        if _running_loop() is loop:
            return await coro
        # wrap_future propagates a caller's cancellation to the task on our loop.
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            runner = self._runner
            if runner is not None and runner.pid != os.getpid():
                # Forked: the loop thread did not survive, and connections (pipes,
                # sockets) must not be shared with the parent anyway.
                runner = None
                self._connections = {}
                self._closing = set()
            if runner is None or runner.loop.is_closed() or not runner.thread.is_alive():
                runner = self._runner = _LoopThread()
                if not self._atexit_registered:
                    # Say goodbye properly (WebSocket close, HTTP session DELETE, stdio
                    # children reaped) instead of vanishing with the daemon thread.
                    atexit.register(self.shutdown)
                    self._atexit_registered = True
            return runner.loop

    def _take_runner(self) -> _LoopThread | None:
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is None or runner.pid != os.getpid() or runner.loop.is_closed():
            return None
        return runner

    async def _connection(self, config: McpServerConfig) -> _Connection:
        self._close_idle()
        key = (config.name, config.fingerprint())
        conn = self._connections.get(key)
        if conn is None or conn.finished:
            conn = self._connections[key] = _Connection(config, self)
        try:
            await conn.connect()
        except BaseException:
            self._discard(conn)
            raise
        return conn

    async def _with_retry(
        self,
        config: McpServerConfig,
        op: Callable[[_Connection], Awaitable[T]],
        timeout_s: float,
    ) -> T:
        for attempt in range(2):
            conn = await self._connection(config)
            conn.in_use += 1
            try:
                async with asyncio.timeout(timeout_s + CALL_GRACE_S):
                    return await op(conn)
            except McpError:
                raise
            except Exception as exc:
                # An HTTP 404 on an established session is the spec's "session
                # expired": whatever JSON-RPC error other servers put in the body.
                expired = conn.http_status == 404 and isinstance(exc, MCPError)
                if isinstance(exc, TimeoutError) or not (expired or is_connection_loss(exc)):
                    raise _request_failure(config, exc, timeout_s, conn.http_status) from exc
                self._discard(conn)
                if attempt:
                    raise McpConnectionError(
                        f"Lost the connection to MCP server '{config.name}'",
                        details={"server": config.name},
                    ) from exc
                logger.info("MCP connection to %r lost; reconnecting", config.name)
            finally:
                conn.in_use -= 1
                conn.last_used = time.monotonic()
        raise AssertionError("unreachable")

    async def _probe(self, config: McpServerConfig) -> list[McpTool]:
        conn = _Connection(config, self)
        try:
            async with asyncio.timeout(config.timeout_s + CALL_GRACE_S):
                await conn.connect()
                return to_tools(config.name, await conn.list_tools())
        except McpError:
            raise
        except Exception as exc:
            raise _request_failure(config, exc, config.timeout_s, conn.http_status) from exc
        finally:
            await conn.close()

    def _discard(self, conn: _Connection) -> None:
        """Forget a connection and close it in the background, so a retry need not
        wait for a dead server's shutdown sequence."""
        key = (conn.config.name, conn.config.fingerprint())
        if self._connections.get(key) is conn:
            del self._connections[key]
        task = asyncio.create_task(conn.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _close_idle(self) -> None:
        deadline = time.monotonic() - self._idle_timeout_s
        idle = [c for c in self._connections.values() if not c.in_use and c.last_used < deadline]
        for conn in idle:
            self._discard(conn)

    async def _close_matching(self, server: str | McpServerConfig | None) -> None:
        def matches(conn: _Connection) -> bool:
            if server is None:
                return True
            if isinstance(server, McpServerConfig):
                return conn.config.fingerprint() == server.fingerprint()
            return conn.config.name == server

        for conn in [c for c in self._connections.values() if matches(c)]:
            self._discard(conn)
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    @asynccontextmanager
    async def _open_transport(
        self, config: McpServerConfig, conn: _Connection
    ) -> AsyncIterator[TransportStreams]:
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
        addresses: Sequence[str] | None = None
        if self._url_guard is not None:
            try:
                vetted = await self._url_guard(config.url)
            except Exception as exc:
                raise _GuardRefused(guard_reason(exc)) from exc
            addresses = list(vetted) if isinstance(vetted, list | tuple) and vetted else None
        headers = config.request_headers()
        if config.transport == "websocket":
            async with websocket_client(
                config.url, headers, config.timeout_s, addresses=addresses
            ) as streams:
                yield streams
            return

        def factory(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            client = self._http_client_factory(headers=headers, timeout=timeout, auth=auth)
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


def _request_failure(
    config: McpServerConfig, exc: Exception, timeout_s: float, http_status: int | None = None
) -> McpError:
    if isinstance(exc, TimeoutError):
        return McpTimeoutError(
            f"MCP server '{config.name}' did not answer within {timeout_s:g}s",
            details={"server": config.name},
        )
    return op_failure(config, exc, http_status)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
