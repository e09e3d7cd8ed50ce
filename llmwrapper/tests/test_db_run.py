"""`db.run` when the pool lends no connection: the probe that tells a busy pool from a
database that is away connects with a timeout of its own, so it never runs on the
event loop, which every stream of the process shares."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from django.db import OperationalError

from llmwrapper import db


class PoolTimeout(Exception):
    """Named like psycopg_pool's, which is how `db.is_pool_timeout` knows it."""


def _no_connection_lent() -> None:
    try:
        raise PoolTimeout("couldn't get a connection after 0.2 sec")
    except PoolTimeout as exc:
        raise OperationalError("couldn't get a connection") from exc


def test_the_probe_after_a_pool_timeout_runs_off_the_loop(monkeypatch: pytest.MonkeyPatch):
    probed_on: list[threading.Thread] = []

    def probe() -> bool:
        probed_on.append(threading.current_thread())
        return False  # the database is away: the unit fails instead of queueing again

    monkeypatch.setattr(db, "_database_answers", probe)
    monkeypatch.setattr(db, "_probe", (0.0, False))
    monkeypatch.setattr(db, "_finished_at", time.monotonic())  # the pool moves

    async def main() -> threading.Thread:
        with pytest.raises(OperationalError):
            await db.run(_no_connection_lent)
        return threading.current_thread()

    loop_thread = asyncio.run(main())
    assert probed_on, "a pool timeout is probed"
    assert all(thread is not loop_thread for thread in probed_on)


def test_a_fresh_verdict_is_read_without_probing_again(monkeypatch: pytest.MonkeyPatch):
    calls: list[int] = []
    monkeypatch.setattr(db, "_database_answers", lambda: calls.append(1) or False)
    monkeypatch.setattr(db, "_probe", (float("inf"), False))  # checked "just now"

    async def main() -> None:
        with pytest.raises(OperationalError):
            await db.run(_no_connection_lent)

    asyncio.run(main())
    assert calls == []
