"""A busy pool keeps sends queued; a stuck pool answers 503 within its wait.

A send borrows a pooled connection for each short unit. When a burst queues behind
the processor, a unit may wait longer than DATABASE_POOL_TIMEOUT although the pool
lends connections all the while: such a unit queues again (up to
DATABASE_POOL_QUEUE_SECONDS). A pool that lends nothing for DATABASE_POOL_TIMEOUT,
because whatever holds its connections is stuck, answers 503 `database_busy` at once.
Through a real server process on PostgreSQL (SQLite has no pool).
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from django.db import connection, transaction

from chats.models import Chat
from providers.testing import FakeOpenAI

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

SENDS = 60


@pytest.fixture
def pooled(app_process, make_tenant):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no connection pool")
    subtenant, raw, _ = make_tenant("acme")
    with FakeOpenAI() as fake:

        def start(**env: str) -> str:
            return app_process(
                OPENAI_API_KEY="sk-test",
                OPENAI_BASE_URL=fake.base_url,
                DEFAULT_LLM_PROVIDER="openai",
                PROVIDER_MAX_RETRIES="0",
                DATABASE_POOL_MAX_SIZE="1",
                **env,
            )

        yield subtenant, {"Authorization": f"Bearer {raw}"}, fake, start


def test_a_burst_on_a_busy_pool_waits_for_its_turn_instead_of_a_503(pooled):
    """Sixty sends at once on one connection, each unit allowed 0.2 s of waiting: the
    last ones wait far longer than that in all, and all are answered."""
    subtenant, headers, fake, start = pooled
    chats = [str(Chat.objects.create(subtenant=subtenant).id) for _ in range(SENDS)]
    for _ in range(SENDS):
        fake.enqueue(text="fine")
    base = start(DATABASE_POOL_TIMEOUT="0.2", DATABASE_POOL_QUEUE_SECONDS="60")

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=SENDS, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=base, headers=headers, timeout=90, limits=limits
        ) as client:
            responses = await asyncio.gather(
                *(client.post(f"/api/v1/chats/{c}/messages", json={"content": "hi"}) for c in chats)
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(burst())
    assert statuses == [200] * SENDS, sorted(set(statuses))
    assert Chat.objects.filter(last_sequence=2).count() == SENDS


def test_a_stuck_pool_answers_503_within_its_wait(pooled):
    """The pool's one connection waits on a row lock held elsewhere: a second send finds
    no connection lent for DATABASE_POOL_TIMEOUT and is refused honestly, at once."""
    subtenant, headers, fake, start = pooled
    locked, other = (Chat.objects.create(subtenant=subtenant) for _ in range(2))
    fake.enqueue(text="after the lock")
    base = start(DATABASE_POOL_TIMEOUT="1", DATABASE_POOL_QUEUE_SECONDS="60")
    holding, release = threading.Event(), threading.Event()

    def hold_the_chat_row() -> None:
        with transaction.atomic():
            Chat.objects.select_for_update().get(id=locked.id)
            holding.set()
            release.wait(30)
        connection.close()

    holder = threading.Thread(target=hold_the_chat_row)
    holder.start()
    assert holding.wait(10)
    first: list[httpx.Response] = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        sender = threading.Thread(
            target=lambda: first.append(
                client.post(f"/api/v1/chats/{locked.id}/messages", json={"content": "one"})
            )
        )
        sender.start()
        time.sleep(1.5)  # its append now waits on the row, holding the only connection
        started = time.monotonic()
        refused = client.post(f"/api/v1/chats/{other.id}/messages", json={"content": "two"})
        waited = time.monotonic() - started
        release.set()
        sender.join(30)
        holder.join(10)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["details"] == {"reason": "database_busy"}
    assert refused.headers["Retry-After"] == "1"
    assert waited < 5
    assert first[0].status_code == 200, first[0].text
    assert Chat.objects.get(id=other.id).last_sequence == 0  # nothing of the refused send
