"""Database work from async code: short units that hand their connection back.

A stream waits on a model for seconds; holding a pooled connection meanwhile caps the
number of concurrent streams at the pool's size. `run` executes one unit of work on
the request's worker thread and closes the thread's connection afterwards, which hands
it back to the pool (or, when it broke, lets the pool discard it). A unit that failed
because the database went away is retried on a fresh connection when it is safe to
run twice (`retry_for` seconds in all, with backoff): the final write of a streamed
answer survives a database restart. Between attempts `run` sleeps on the event loop,
never on the worker thread, which other requests (every WebSocket of the process)
may share.

A unit waits DATABASE_POOL_TIMEOUT for a pooled connection. When none came but the
pool is busy rather than stuck (the database answers, and another unit of this
process got a connection and finished within that time: a burst queueing behind the
processor), the unit queues again, for up to DATABASE_POOL_QUEUE_SECONDS in all: no
statement of it ran, so running it again is safe. Otherwise (without `retry_for`) the
unit fails and the request answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")

DB_ERRORS = (OperationalError, InterfaceError)
_FIRST_DELAY = 0.1
_MAX_DELAY = 2.0


def is_pool_timeout(exc: BaseException) -> bool:
    """Whether a database error is the pool giving up on lending a connection."""
    cause = exc.__cause__ or exc.__context__
    return type(exc).__name__ == "PoolTimeout" or type(cause).__name__ == "PoolTimeout"


def is_pool_exhausted(exc: BaseException) -> bool:
    """A pool timeout while the database answers: busy, not a database that is away.
    Told apart by one direct connection attempt (on this failure path only, its verdict
    kept for a second)."""
    return is_pool_timeout(exc) and _database_answers()


_probe: tuple[float, bool] = (0.0, False)


def _database_answers() -> bool:
    global _probe
    checked_at, answers = _probe
    if time.monotonic() - checked_at < 1.0:
        return answers
    try:
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        psycopg.connect(**{**params, "connect_timeout": 1}).close()
        answers = True
    except Exception:
        answers = False
    _probe = (time.monotonic(), answers)
    return answers


def release() -> None:
    """Hand this thread's pooled connection back (outside a transaction; a no-op
    without one). Without a pool (SQLite) the connection is kept to the request's end:
    holding it limits nothing, and reopening costs more than the write."""
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()


# When a unit of this process last finished: the pool lends connections while it moves.
_finished_at = 0.0


def _once(fn: Callable[..., T], args: tuple, kwargs: dict, keep: bool) -> T:
    global _finished_at
    try:
        result = fn(*args, **kwargs)
    except BaseException:
        release()  # a failed unit never keeps its connection
        raise
    if not keep:
        release()
    _finished_at = time.monotonic()
    return result


async def _pool_moving(exc: BaseException, queued_since: float) -> bool:
    """Whether a unit that found no connection free may queue for one again."""
    if not is_pool_timeout(exc):
        return False
    # The probe connects with a 1 s timeout: never on the loop. Its verdict is kept for
    # a second, so the 503 that may follow (`is_pool_exhausted`) reads it from there.
    answers = _probe[1] if time.monotonic() - _probe[0] < 1.0 else None
    if answers is None:
        answers = await asyncio.to_thread(_database_answers)
    now = time.monotonic()
    return (
        answers
        and now - queued_since < settings.DATABASE_POOL_QUEUE_SECONDS
        and now - _finished_at < settings.DATABASE_POOL_TIMEOUT
    )


# One wrapper for every unit (building asgiref's SyncToAsync costs more than the hop).
_run_once = sync_to_async(_once)


async def run(
    fn: Callable[..., T], /, *args: Any, retry_for: float = 0.0, keep: bool = False, **kwargs: Any
) -> T:
    """One unit on the request's worker thread, from async code; see the module docstring.

    `keep=True` keeps the connection for the request's next unit, which must follow
    without waiting on anything slow (a unit that releases it, or the request's end,
    which closes it): each checkout from the pool costs a health-check round trip.
    """
    started = time.monotonic()
    deadline = started + retry_for
    delay = _FIRST_DELAY
    while True:
        try:
            return await _run_once(fn, args, kwargs, keep)
        except DB_ERRORS as exc:
            if await _pool_moving(exc, started):
                logger.info("No pooled connection free yet; the pool is busy, queueing again")
                continue
            if not retry_for or time.monotonic() + delay > deadline:
                raise
            logger.warning("Database unavailable (%s); retrying on a fresh connection", exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY)
