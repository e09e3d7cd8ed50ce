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
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, TypeVar

from mcp import MCPError
from mcp.client._transport import TransportStreams
from mcp.shared._httpx_utils import create_mcp_http_client

from tools.mcp.config import McpServerConfig
from tools.mcp.errors import (
    McpConnectionError,
    McpError,
    McpTimeoutError,
    McpToolNotFoundError,
)
from tools.mcp.failures import is_connection_loss, op_failure
from tools.mcp.session import Connection, LoopThread
from tools.mcp.tool_types import (
    QUALIFIED_NAME_SEPARATOR,
    McpTool,
    McpToolResult,
    qualified_tool_name,
    to_result,
    to_tools,
)
from tools.mcp.transports import HttpClientFactory, UrlGuard, open_transport

__all__ = [
    "QUALIFIED_NAME_SEPARATOR",
    "HttpClientFactory",
    "McpClientManager",
    "McpTool",
    "McpToolResult",
    "UrlGuard",
    "qualified_tool_name",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Headroom over the SDK's own request timeout, so its courtesy cancel goes out first.
CALL_GRACE_S = 5.0


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
        self._runner: LoopThread | None = None
        self._atexit_registered = False
        # Touched only on the manager loop.
        self._connections: dict[tuple[str, str], Connection] = {}
        self._closing: set[asyncio.Task[None]] = set()

    # Public API: every coroutine runs on the manager loop.

    async def list_tools(self, config: McpServerConfig) -> list[McpTool]:
        """The server's tools, named ``<server>__<tool>`` for the model."""

        async def op(conn: Connection) -> list[McpTool]:
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

        async def op(conn: Connection) -> McpToolResult:
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
                runner = self._runner = LoopThread()
                if not self._atexit_registered:
                    # Say goodbye properly (WebSocket close, HTTP session DELETE, stdio
                    # children reaped) instead of vanishing with the daemon thread.
                    atexit.register(self.shutdown)
                    self._atexit_registered = True
            return runner.loop

    def _take_runner(self) -> LoopThread | None:
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is None or runner.pid != os.getpid() or runner.loop.is_closed():
            return None
        return runner

    async def _connection(self, config: McpServerConfig) -> Connection:
        self._close_idle()
        key = (config.name, config.fingerprint())
        conn = self._connections.get(key)
        if conn is None or conn.finished:
            conn = self._connections[key] = self._new_connection(config)
        try:
            await conn.connect()
        except BaseException:
            self._discard(conn)
            raise
        return conn

    async def _with_retry(
        self,
        config: McpServerConfig,
        op: Callable[[Connection], Awaitable[T]],
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
        conn = self._new_connection(config)
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

    def _discard(self, conn: Connection) -> None:
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
        def matches(conn: Connection) -> bool:
            if server is None:
                return True
            if isinstance(server, McpServerConfig):
                return conn.config.fingerprint() == server.fingerprint()
            return conn.config.name == server

        for conn in [c for c in self._connections.values() if matches(c)]:
            self._discard(conn)
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    def _new_connection(self, config: McpServerConfig) -> Connection:
        return Connection(config, open_transport=self._open_transport, mode=self._mode)

    def _open_transport(
        self, config: McpServerConfig, conn: Connection
    ) -> AbstractAsyncContextManager[TransportStreams]:
        return open_transport(
            config,
            conn,
            url_guard=self._url_guard,
            http_client_factory=self._http_client_factory,
        )


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
