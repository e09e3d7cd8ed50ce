"""Django's ASGI handler, with each request's sync work on a reused thread.

Django runs the sync work of an ASGI request (its signals, `sync_to_async` calls, the
database units of `llmwrapper.db`) on a thread of the request's own, so that one slow
request cannot stall the others; stock Django starts a new thread for every request
and stops it at the end, which costs about half a millisecond of CPU each time. Here
the threads are kept: a request borrows an idle one (or a new one when none is idle)
and gives it back when it ends. Each request still has a thread to itself while it
runs; at most THREADS_KEPT_IDLE idle threads are kept.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

THREADS_KEPT_IDLE = 64


class _Threads:
    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._idle: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()

    def borrow(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)


class ReusedThreadsASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._threads = _Threads(THREADS_KEPT_IDLE)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._threads.borrow()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self._threads.give_back(executor)


def get_asgi_application() -> ReusedThreadsASGIHandler:
    """As `django.core.asgi.get_asgi_application`, with reused request threads."""
    import django

    django.setup(set_prefix=False)
    return ReusedThreadsASGIHandler()
