"""Many chat streams at once on one process with a small database pool."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from chats.models import Chat
from providers.testing import FakeOpenAI

pytestmark = pytest.mark.django_db(transaction=True)

STREAMS = 200
CHATS = 20


async def _stream(client: httpx.AsyncClient, chat_id: str) -> str:
    events = []
    async with client.stream(
        "POST", f"/api/v1/chats/{chat_id}/messages/stream", json={"content": "go"}
    ) as response:
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
    return events[-1] if events else "nothing"


def test_200_concurrent_chat_streams_on_a_pool_of_4(app_process, make_tenant):
    subtenant, raw, _ = make_tenant("acme")
    chats = [
        str(Chat.objects.create(subtenant=subtenant, provider="openai").id) for _ in range(CHATS)
    ]
    with FakeOpenAI() as fake:
        for _ in range(STREAMS):
            fake.enqueue(text=" ".join(f"w{i}" for i in range(20)), chunks=20, chunk_delay=0.1)
        base = app_process(
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=fake.base_url,
            DEFAULT_LLM_PROVIDER="openai",
            PROVIDER_MAX_RETRIES="0",
            # 4 connections for 200 streams: a stream holding one for its life would
            # serialise them 4 at a time (100 s). Two cores serve the burst, the load
            # and the fake vendor, so a turn may queue for the pool for a while.
            DATABASE_POOL_MAX_SIZE="4",
            DATABASE_POOL_TIMEOUT="30",
        )

        async def run_all() -> list[str]:
            limits = httpx.Limits(max_connections=STREAMS, max_keepalive_connections=0)
            async with httpx.AsyncClient(
                base_url=base,
                headers={"Authorization": f"Bearer {raw}"},
                timeout=60,
                limits=limits,
            ) as client:
                return await asyncio.gather(
                    *(_stream(client, chats[i % CHATS]) for i in range(STREAMS))
                )

        ends = asyncio.run(run_all())
    assert ends.count("message.completed") == STREAMS, sorted(set(ends))
    # Each chat holds its user and assistant messages with gap-free sequences.
    for chat_id in chats:
        sequences = list(
            Chat.objects.get(id=chat_id)
            .messages.order_by("sequence")
            .values_list("sequence", flat=True)
        )
        assert sequences == list(range(1, 2 * STREAMS // CHATS + 1))
