"""`Watch`: timeouts for a series of awaits on one timer, as `asyncio.timeout` for each."""

from __future__ import annotations

import asyncio

import pytest

from providers.core.timers import Watch


async def test_a_block_past_its_time_raises_timeout_error():
    watch = Watch()
    with pytest.raises(TimeoutError), watch.within(0.05):
        await asyncio.sleep(1)
    assert watch.expired
    watch.close()


async def test_blocks_that_end_in_time_do_not_expire():
    watch = Watch()
    for _ in range(3):
        with watch.within(0.2):
            await asyncio.sleep(0.01)
        assert not watch.expired
    watch.close()


async def test_an_idle_timeout_moves_later_with_each_block():
    """Five reads of 0.04 s under an idle limit of 0.1 s: 0.2 s in all, no timeout,
    although the first block's timer was due after 0.1 s."""
    watch = Watch()
    for _ in range(5):
        with watch.within(0.1):
            await asyncio.sleep(0.04)
    assert not watch.expired
    watch.close()


async def test_a_deadline_counts_the_whole_series():
    loop = asyncio.get_running_loop()
    watch, when = Watch(), loop.time() + 0.15
    with pytest.raises(TimeoutError):
        for _ in range(10):
            with watch.until(when):
                await asyncio.sleep(0.04)
    assert watch.expired
    assert loop.time() - (when - 0.15) < 0.3


async def test_time_spent_between_blocks_is_not_a_block():
    """The timer fires while the task runs outside a block: nothing is cancelled, and the
    next block gets its own time."""
    watch = Watch()
    with watch.within(0.05):
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)  # the timer fires here, outside any block
    with watch.within(0.2):
        await asyncio.sleep(0.01)
    assert not watch.expired
    watch.close()


async def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    watch = Watch()
    entered = asyncio.Event()

    async def waiting() -> None:
        with watch.within(10):
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(waiting())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not watch.expired
    watch.close()


async def test_an_inner_timeout_error_is_not_the_watch_expiring():
    watch = Watch()
    with pytest.raises(TimeoutError), watch.within(10):
        raise TimeoutError("the awaited thing's own")
    assert not watch.expired
    watch.close()


async def test_a_series_keeps_one_timer_and_close_drops_it():
    """A thousand blocks schedule one timer, not a thousand; closed, none is left."""
    loop = asyncio.get_running_loop()

    def timers() -> int:
        return sum(not h.cancelled() for h in loop._scheduled)  # type: ignore[attr-defined]

    before = timers()
    watch = Watch()
    for _ in range(1000):
        with watch.within(30):
            await asyncio.sleep(0)
    assert timers() - before == 1
    assert len(loop._scheduled) < 50  # type: ignore[attr-defined]  # none left cancelled
    watch.close()
    assert timers() == before
