"""Leases on streaming messages and Idempotency-Keys: a dead worker's work is ended."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from chats import leases
from chats.models import Chat, IdempotencyRecord, Message
from chats.services import request_fingerprint
from conftest import async_client_for
from providers.testing import FakeOpenAI

pytestmark = pytest.mark.django_db(transaction=True)


def _streaming(chat: Chat, sequence: int, **fields) -> Message:
    return Message.objects.create(
        chat=chat, sequence=sequence, role="assistant", status="streaming", **fields
    )


def test_sweep_ends_lapsed_streams_and_renews_held_ones(make_tenant, settings):
    settings.CHAT_LEASE_SECONDS = 30
    subtenant, _, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant)
    past = timezone.now() - timedelta(seconds=1)
    lapsed = _streaming(chat, 1, content="half an ans", lease_expires_at=past)
    held = _streaming(chat, 2, content="still going", lease_expires_at=past)
    alive = _streaming(chat, 3, lease_expires_at=timezone.now() + timedelta(seconds=20))
    legacy = _streaming(chat, 4, content="old")  # written before leases existed
    Message.objects.filter(pk=legacy.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    leases.hold(messages=(held.id,))
    try:
        counts = leases.sweep()
    finally:
        leases.release(messages=(held.id,))

    assert counts["interrupted"] == 2 and counts["renewed"] == 1
    lapsed.refresh_from_db()
    assert (lapsed.status, lapsed.content) == ("interrupted", "half an ans")
    assert lapsed.error == leases.INTERRUPTED_BY_SWEEP and lapsed.lease_expires_at is None
    legacy.refresh_from_db()
    assert legacy.status == "interrupted"
    held.refresh_from_db()
    assert held.status == "streaming" and held.lease_expires_at > timezone.now()
    alive.refresh_from_db()
    assert alive.status == "streaming"
    assert leases.sweep()["interrupted"] == 0  # idempotent


@pytest.fixture
def acme(make_tenant):
    subtenant, raw, _ = make_tenant("acme")
    return Chat.objects.create(subtenant=subtenant, provider="openai"), raw


async def test_a_lapsed_idempotency_claim_is_taken_over_by_a_retry(acme, llm_fakes):
    chat, raw = acme
    body = {"content": "pay"}
    record = await IdempotencyRecord.objects.acreate(
        chat=chat,
        key="k-1",
        fingerprint=request_fingerprint(body),
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )
    client = async_client_for(raw)
    url = f"/api/v1/chats/{chat.id}/messages"
    held = await client.post(
        url, body, content_type="application/json", headers={"Idempotency-Key": "k-1"}
    )
    assert held.status_code == 409, held.content

    record.lease_expires_at = timezone.now() - timedelta(seconds=1)
    await record.asave()
    llm_fakes.openai.enqueue(text="paid")
    retried = await client.post(
        url, body, content_type="application/json", headers={"Idempotency-Key": "k-1"}
    )
    assert retried.status_code == 200, retried.content
    assert retried.json()["message"]["content"] == "paid"
    await record.arefresh_from_db()
    assert record.status == "done" and record.lease_expires_at is None


def _messages(url: str, chat: Chat, raw: str) -> list[dict]:
    response = httpx.get(
        f"{url}/api/v1/chats/{chat.id}/messages",
        headers={"Authorization": f"Bearer {raw}"},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()["results"]


def test_a_killed_worker_leaves_its_stream_interrupted_and_its_key_free(app_process, make_tenant):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, provider="openai")
    with FakeOpenAI() as fake:
        env = {
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": fake.base_url,
            "DEFAULT_LLM_PROVIDER": "openai",
            "PROVIDER_MAX_RETRIES": "0",
            "CHAT_LEASE_SECONDS": "1.5",
            "CHAT_PARTIAL_SAVE_SECONDS": "0.1",
        }
        doomed, survivor = app_process(**env), app_process(**env)
        fake.enqueue(text="one two three four five six seven eight", chunks=8, chunk_delay=0.4)
        headers = {"Authorization": f"Bearer {raw}", "Idempotency-Key": "k-1"}
        body = {"content": "count for me"}
        deltas = 0
        with httpx.stream(
            "POST",
            f"{doomed}/api/v1/chats/{chat.id}/messages/stream",
            json=body,
            headers=headers,
            timeout=10,
        ) as stream:
            # Kept referenced: a generator dropped mid-loop closes the connection, and the
            # worker would then end the stream itself (as a disconnect).
            lines = stream.iter_lines()
            while deltas < 3:
                deltas += next(lines) == "event: delta"
            time.sleep(0.3)  # past a partial save
            app_process.processes[doomed].send_signal(signal.SIGKILL)
            app_process.processes[doomed].wait(5)

        # The survivor's sweeper ends the dead worker's stream once its lease lapses.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            stored = _messages(survivor, chat, raw)
            if stored[-1]["status"] != "streaming":
                break
            time.sleep(0.2)
        user, assistant = stored
        assert user["role"] == "user" and user["content"] == "count for me"
        assert assistant["status"] == "interrupted"
        assert assistant["error"] == leases.INTERRUPTED_BY_SWEEP  # not a disconnect
        # At least the three deltas read before the kill were saved, nothing invented.
        assert len(assistant["content"]) >= len("one two thr")
        assert "one two three four five six seven eight".startswith(assistant["content"])

        # The dead send's Idempotency-Key is free again: the retry runs.
        fake.enqueue(text="recounted")
        retried = httpx.post(
            f"{survivor}/api/v1/chats/{chat.id}/messages", json=body, headers=headers, timeout=10
        )
        assert retried.status_code == 200, retried.text
        assert retried.json()["message"]["content"] == "recounted"
