"""Django's ASGI handler, with each request's sync work on a reused thread, and no
thread hop for a request that does no sync work.

Django runs the sync work of an ASGI request (its signals, `sync_to_async` calls, the
database units of `llmwrapper.db`) on a thread of the request's own, so that one slow
request cannot stall the others; stock Django starts a new thread for every request
and stops it at the end, which costs about half a millisecond of CPU each time. Here
the threads are kept: a request borrows an idle one (or a new one when none is idle)
and gives it back when it ends. Each request still has a thread to itself while it
runs; at most THREADS_KEPT_IDLE idle threads are kept.

Stock Django also hops to that thread twice for every request, for the receivers of
`request_started` and for `response.close()` (which sends `request_finished`): they
reset and close the thread's database connections. Here `request_started` is sent on
the request's thread just before its first unit of work, and a request whose thread
holds no database connection at its end closes its response on the event loop: one
that gave its thread no work (an API call answered from in-memory state and the
upstream model), or whose units each handed their pooled connection back (a chat send
on PostgreSQL). Its thread holds nothing of it to close.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import connections
from django.urls import set_script_prefix

THREADS_KEPT_IDLE = 64


class RequestThread(ThreadPoolExecutor):
    """One request's thread: notes whether the request gave it work and whether its
    last unit left a database connection open, and runs `on_first` on it before the
    first unit."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="request")
        self.used = False
        self.holds = False
        self.on_first: Callable[[], None] | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        first = None
        if not self.used:
            self.used = True
            first, self.on_first = self.on_first, None
        return super().submit(self._unit, first, fn, args, kwargs)

    def _unit(
        self, first: Callable[[], None] | None, fn: Callable[..., Any], args: tuple, kwargs: dict
    ) -> Any:
        try:
            if first is not None:
                first()
            return fn(*args, **kwargs)
        finally:
            self.holds = any(
                c.connection is not None for c in connections.all(initialized_only=True)
            )


class _Threads:
    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._idle: list[RequestThread] = []
        self._lock = threading.Lock()

    def borrow(self) -> RequestThread:
        with self._lock:
            thread = self._idle.pop() if self._idle else None
        thread = thread or RequestThread()
        thread.used, thread.holds, thread.on_first = False, False, None
        return thread

    def give_back(self, thread: RequestThread) -> None:
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(thread)
                return
        thread.shutdown(wait=False)


class ReusedThreadsASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._threads = _Threads(THREADS_KEPT_IDLE)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        thread = self._threads.borrow()
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self._handle(scope, receive, send, thread)
        finally:
            self._threads.give_back(thread)

    @contextlib.asynccontextmanager
    async def request_thread(self, scope: dict[str, Any]) -> AsyncIterator[None]:
        """A thread of its own for the sync work of a request answered outside Django's
        handler (`llmwrapper.lane`), with the same signals around that work."""
        thread = self._threads.borrow()
        sender = self.__class__
        thread.on_first = lambda: signals.request_started.send(sender=sender, scope=scope)
        try:
            async with ThreadSensitiveContext(executor=thread):
                try:
                    yield
                finally:
                    if thread.used:
                        await self._finished(thread)
        finally:
            self._threads.give_back(thread)

    async def _handle(
        self, scope: dict[str, Any], receive: Any, send: Any, thread: RequestThread
    ) -> None:
        """As Django 5.2's `ASGIHandler.handle`, but for when `request_started` is sent
        and where the response is closed (see the module docstring)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        sender = self.__class__
        thread.on_first = lambda: signals.request_started.send(sender=sender, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await self._close(error_response, thread)
            return

        response = await self._respond(request, receive, send, body_file)
        if response is None:
            await self._finished(thread)
        else:
            await self._close(response, thread)
        body_file.close()

    async def _respond(self, request: Any, receive: Any, send: Any, body_file: Any) -> Any:
        """Get and send the response while listening for the client's disconnect; the
        response, or None when the client left first."""

        async def process_request() -> Any:
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client left meanwhile
                await self.send_response(response, send)
            return response

        # The disconnect listener goes first: it raises nothing unexpected that would
        # keep the request's task from being cancelled.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()  # views may handle their cancellation
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            return tasks[1].result()
        except asyncio.CancelledError:
            return None

    async def _close(self, response: Any, thread: RequestThread) -> None:
        """`response.close()` (which sends `request_finished`) on the request's thread,
        or on the loop when the thread holds no database connection: the request gave
        it no work, or each of its units handed its connection back to the pool."""
        thread.on_first = None
        if thread.holds:
            await sync_to_async(response.close)()
        else:
            response.close()

    async def _finished(self, thread: RequestThread) -> None:
        thread.on_first = None
        if thread.holds:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            signals.request_finished.send(sender=self.__class__)


def get_asgi_application() -> ReusedThreadsASGIHandler:
    """As `django.core.asgi.get_asgi_application`, with reused request threads."""
    import django

    django.setup(set_prefix=False)
    return ReusedThreadsASGIHandler()
