"""Database work from async code: short units that hand their connection back.

A stream waits on a model for seconds; holding a pooled connection meanwhile caps the
number of concurrent streams at the pool's size. `run` executes one unit of work on
the request's worker thread and closes the thread's connection afterwards, which hands
it back to the pool (or, when it broke, lets the pool discard it). A unit that failed
because the database went away is retried on a fresh connection when it is safe to
run twice (`retry_for` seconds in all, with backoff): the final write of a streamed
answer survives a database restart. A pool that has no connection free within
`DATABASE_POOL_TIMEOUT` raises at once, so the request answers 503 with Retry-After.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_DELAY = 0.1
_MAX_DELAY = 2.0


def is_pool_exhausted(exc: BaseException) -> bool:
    """Whether a database error means the pool had no connection to lend in time."""
    cause = exc.__cause__ or exc.__context__
    return type(cause).__name__ == "PoolTimeout" or type(exc).__name__ == "PoolTimeout"


def release() -> None:
    """Hand this thread's connection back (outside a transaction; a no-op without one)."""
    if not connection.in_atomic_block:
        connection.close()


def unit(fn: Callable[..., T], /, *args: Any, retry_for: float = 0.0, **kwargs: Any) -> T:
    """Run `fn` (sync), then release the connection; see the module docstring."""
    deadline = time.monotonic() + retry_for
    delay = _FIRST_DELAY
    while True:
        try:
            return fn(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if (
                connection.in_atomic_block
                or is_pool_exhausted(exc)
                or time.monotonic() + delay > deadline
            ):
                raise
            logger.warning("Database unavailable (%s); retrying on a fresh connection", exc)
            release()
            time.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)
        finally:
            release()


async def run(fn: Callable[..., T], /, *args: Any, retry_for: float = 0.0, **kwargs: Any) -> T:
    """`unit` on the request's worker thread, from async code."""
    return await sync_to_async(unit)(fn, *args, retry_for=retry_for, **kwargs)
