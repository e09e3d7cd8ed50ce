"""One MCP session owned by a task on the manager's loop, and the loop's thread."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Literal

import anyio
import mcp_types
from mcp import Client
from mcp.client._transport import TransportStreams

from tools.mcp.config import McpServerConfig
from tools.mcp.failures import connect_failure

logger = logging.getLogger("tools.mcp.manager")

CLIENT_INFO = mcp_types.Implementation(name="llmwrapper", version="1")
MAX_TOOL_PAGES = 100

# Opens the streams of a session for a config; the connection records HTTP statuses.
TransportOpener = Callable[
    [McpServerConfig, "Connection"], AbstractAsyncContextManager[TransportStreams]
]


class Connection:
    """One MCP session, owned by the task that runs ``_run`` on the manager loop."""

    def __init__(
        self,
        config: McpServerConfig,
        *,
        open_transport: TransportOpener,
        mode: Literal["auto", "legacy"],
    ) -> None:
        self.config = config
        self.client: Client | None = None
        self.tools: dict[str, mcp_types.Tool] | None = None
        self.last_used = time.monotonic()
        self.in_use = 0  # requests in flight; a busy connection is never idle
        # Last HTTP error or redirect status, for clearer errors.
        self.http_status: int | None = None
        self._open_transport = open_transport
        self._mode = mode
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
                transport = self._open_transport(self.config, self)
                async with Client(
                    transport,
                    mode=self._mode,
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


class LoopThread:
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
