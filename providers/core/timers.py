"""Timeouts for a series of awaits on one timer.

`asyncio.timeout` schedules a timer when its block starts and cancels it when the
block ends: a new handle in the loop's heap, and a cancelled one left there, for every
block. A stream pays that per chunk at every layer that bounds its reads (the
connection's read timeout, the vendor's idle timeout, the call's deadline). A `Watch`
keeps one timer for a series of blocks: each block says by when it must end (an idle
timeout moves that later at every read, a deadline keeps it), and a timer that fires
before the current block's time re-arms itself for it, once.

A block that is still running at its time is cancelled and raises `TimeoutError`, as
under `asyncio.timeout`, unless the task was also cancelled from elsewhere meanwhile.
`close` drops the timer; a series that ends without it leaves the timer to fire once,
harmlessly, at the last block's time.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Watch:
    """One timer over a series of `with watch.until(when):` blocks of one task."""

    __slots__ = ("_cancelling", "_fired", "_handle", "_task", "_when", "expired")

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._when = 0.0
        self._cancelling = 0
        self._fired = False
        self.expired = False  # whether the last block ran out of time

    def until(self, when: float) -> Watch:
        """The next block, which must end by the loop's time `when`."""
        task = asyncio.current_task()
        assert task is not None, "a Watch bounds awaits of a task"
        self._task, self._when, self._cancelling = task, when, task.cancelling()
        self.expired = False
        handle = self._handle
        if handle is None or handle.when() > when:
            if handle is not None:
                handle.cancel()
            self._handle = asyncio.get_running_loop().call_at(when, self._fire)
        return self

    def within(self, seconds: float) -> Watch:
        """The next block, which must end within `seconds` from now."""
        return self.until(asyncio.get_running_loop().time() + seconds)

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if self._fired:
            self._fired = False
            assert task is not None
            if task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                self.expired = True
                raise TimeoutError from exc

    def close(self) -> None:
        """The series is over: drop the timer."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        task = self._task
        if task is None:  # between blocks: the next one arms a timer again
            return
        loop = asyncio.get_running_loop()
        if self._when > loop.time():  # the block's time moved later
            self._handle = loop.call_at(self._when, self._fire)
            return
        self._fired = True
        task.cancel()
