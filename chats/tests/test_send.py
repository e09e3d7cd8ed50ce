"""Sending messages over HTTP (sync and SSE), against fake vendor servers."""

import json
import threading
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from chats.models import Chat, Message
from conftest import async_client_for, client_for, read_sse
from memories.models import Memory
from providers.models import LlmCall
from providers.records import wait_idle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(make_tenant, llm_fakes):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, title="t", provider="openai")
    return chat, raw, async_client_for(raw), llm_fakes


async def send(client, chat, body, path="messages", **headers):
    return await client.post(
        f"/api/v1/chats/{chat.id}/{path}",
        body,
        content_type="application/json",
        headers=headers,
    )


def messages_of(chat):
    return list(Message.objects.filter(chat=chat).order_by("sequence"))


async def test_sync_send_persists_user_and_assistant_messages_with_usage(setup):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="Hello human", usage=(7, 2))
    response = await send(client, chat, {"content": "Hello model"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"]["content"] == "Hello human"
    assert body["usage"] == {"input_tokens": 7, "output_tokens": 2, "total_tokens": 9}
    assert body["finish_reason"] == "stop"
    assert body["input_messages"][0]["content"] == "Hello model"

    stored = await sync_to_async(messages_of)(chat)
    assert [(m.sequence, m.role, m.status) for m in stored] == [
        (1, "user", "complete"),
        (2, "assistant", "complete"),
    ]
    assistant = stored[1]
    assert (assistant.input_tokens, assistant.output_tokens) == (7, 2)
    assert assistant.latency_ms is not None and assistant.provider == "openai"
    wait_idle()  # call records are stored in the background
    assert await LlmCall.objects.filter(chat_id=chat.id, status="ok").acount() == 1


async def test_sse_send_streams_deltas_and_persists_their_concatenation(setup):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="alpha beta gamma delta epsilon", chunks=5)
    response = await send(client, chat, {"content": "Go"}, path="messages/stream")
    assert response["Content-Type"] == "text/event-stream"
    events = await read_sse(response)
    names = [name for name, _ in events]
    assert names[0] == "message.created"
    assert names[-1] == "message.completed"
    assert names.count("delta") >= 3
    assert names.index("message.created") < names.index("delta")
    deltas = "".join(data["text"] for name, data in events if name == "delta")
    stored = await sync_to_async(messages_of)(chat)
    assert stored[-1].content == deltas == "alpha beta gamma delta epsilon"
    assert events[0][1]["message"]["id"] == str(stored[-1].id)


async def test_history_and_chat_defaults_are_sent(setup):
    chat, _, client, fakes = setup
    await Chat.objects.filter(pk=chat.pk).aupdate(
        system_prompt="You are terse.", model="gpt-4o", params={"temperature": 0.1}
    )
    chat = await Chat.objects.select_related("subtenant").aget(pk=chat.pk)
    fakes.openai.enqueue(text="first answer")
    await send(client, chat, {"content": "first question"})
    await send(client, chat, {"content": "second question", "max_tokens": 20})
    sent = fakes.openai.chat_requests()[-1].body
    assert sent["model"] == "gpt-4o"
    assert sent["temperature"] == 0.1
    assert (sent.get("max_tokens") or sent.get("max_completion_tokens")) == 20
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", "You are terse."),
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", "second question"),
    ]


async def test_memories_are_injected_only_when_asked_and_only_named_keys(setup):
    chat, _, client, fakes = setup
    await Memory.objects.acreate(subtenant_id=chat.subtenant_id, key="user.name", value="Ada")
    await Memory.objects.acreate(
        subtenant_id=chat.subtenant_id, key="user.city", value={"n": "Oslo"}
    )

    await send(client, chat, {"content": "no memories"})
    assert "Ada" not in json.dumps(fakes.openai.chat_requests()[-1].body)

    await send(client, chat, {"content": "all memories", "include_memories": True})
    system = fakes.openai.chat_requests()[-1].body["messages"][0]
    assert system["role"] == "system"
    assert system["content"] == (
        "Known facts about this user and account (key: value):\n"
        '- user.city: {"n":"Oslo"}\n'
        '- user.name: "Ada"'
    )

    await send(client, chat, {"content": "one memory", "memory_keys": ["user.city"]})
    system = fakes.openai.chat_requests()[-1].body["messages"][0]["content"]
    assert "Oslo" in system and "Ada" not in system


async def test_provider_failure_leaves_an_error_message_and_an_error_answer(setup, settings):
    chat, _, client, fakes = setup
    settings.PROVIDER_MAX_RETRIES = 0
    fakes.openai.enqueue(status=500)
    response = await send(client, chat, {"content": "hi"})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["details"]["provider"] == "openai"
    stored = await sync_to_async(messages_of)(chat)
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "error")]
    assert stored[1].error
    assert error["details"]["message_id"] == str(stored[1].id)


async def test_stream_failure_midway_keeps_partial_text_marked_error(setup):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="one two three four five six", chunks=6, cut_after_chunks=3)
    events = await read_sse(await send(client, chat, {"content": "hi"}, path="messages/stream"))
    assert events[-1][0] == "error"
    assert "message.completed" not in [name for name, _ in events]
    deltas = "".join(d["text"] for name, d in events if name == "delta")
    stored = (await sync_to_async(messages_of)(chat))[-1]
    assert stored.status == "error" and stored.content == deltas


async def test_unconfigured_provider_is_400_and_stores_nothing(setup, settings):
    chat, _, client, _ = setup
    settings.OPENAI_API_KEY = ""
    response = await send(client, chat, {"content": "hi"})
    assert response.status_code == 400
    assert "OPENAI_API_KEY" in response.json()["error"]["message"]
    assert await Message.objects.filter(chat=chat).acount() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "content"),
        ({"content": 5, "tools": "x"}, "tools"),
        ({"content": "x", "include_memories": "maybe"}, "include_memories"),
        (
            {"content": "x", "tool_results": [{"tool_call_id": "nope", "content": "r"}]},
            "tool_results",
        ),
        ({"content": "x", "temperature": -1}, "temperature"),
        ({"content": "x", "surprise": 1}, "surprise"),
    ],
)
async def test_invalid_sends_are_400_and_store_nothing(setup, body, field):
    chat, _, client, fakes = setup
    response = await send(client, chat, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert await Message.objects.filter(chat=chat).acount() == 0
    assert fakes.openai.chat_requests() == []


async def test_same_idempotency_key_sends_once(setup):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="only once")
    first = await send(client, chat, {"content": "pay"}, **{"Idempotency-Key": "k-1"})
    second = await send(client, chat, {"content": "pay"}, **{"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert len(fakes.openai.chat_requests()) == 1
    assert await Message.objects.filter(chat=chat).acount() == 2

    replay = await send(
        client, chat, {"content": "pay"}, path="messages/stream", **{"Idempotency-Key": "k-1"}
    )
    events = await read_sse(replay)
    assert events[-1] == ("message.completed", first.json())
    assert len(fakes.openai.chat_requests()) == 1

    other_body = await send(client, chat, {"content": "other"}, **{"Idempotency-Key": "k-1"})
    assert other_body.status_code == 409


async def test_client_side_tool_round_trip_in_a_chat(setup):
    chat, _, client, fakes = setup
    tool = {
        "type": "function",
        "function": {"name": "lookup_order", "parameters": {"type": "object"}},
    }
    fakes.openai.enqueue(tool_calls=[{"name": "lookup_order", "arguments": {"id": 7}}])
    first = (await send(client, chat, {"content": "Where is order 7?", "tools": [tool]})).json()
    assert first["finish_reason"] == "tool_calls"
    [call] = first["tool_calls"]
    assert call["name"] == "lookup_order" and call["arguments"] == {"id": 7}

    fakes.openai.enqueue(text="Order 7 ships tomorrow.")
    second = await send(
        client,
        chat,
        {
            "tool_results": [{"tool_call_id": call["id"], "content": {"eta": "tomorrow"}}],
            "tools": [tool],
        },
    )
    assert second.status_code == 200, second.content
    assert second.json()["message"]["content"] == "Order 7 ships tomorrow."
    sent = fakes.openai.chat_requests()[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[2]["tool_call_id"] == call["id"] and "tomorrow" in sent[2]["content"]
    stored = await sync_to_async(messages_of)(chat)
    assert [m.role for m in stored] == ["user", "assistant", "tool", "assistant"]


async def test_another_tenants_chat_is_404_on_send_and_stream(setup, make_tenant):
    chat, _, _, fakes = setup
    _, raw, _ = await sync_to_async(make_tenant)("intruder")
    intruder = async_client_for(raw)
    for path in ("messages", "messages/stream"):
        response = await send(intruder, chat, {"content": "hi"}, path=path)
        assert response.status_code == 404
    assert (await intruder.get(f"/api/v1/chats/{chat.id}/messages")).status_code == 404
    assert fakes.openai.chat_requests() == []
    assert await Message.objects.filter(chat=chat).acount() == 0


def test_client_disconnect_mid_stream_keeps_partial_text_as_interrupted(setup, live_server_url):
    chat, raw, _, fakes = setup
    fakes.openai.enqueue(text=" ".join(f"w{i}" for i in range(40)), chunks=40, chunk_delay=0.05)
    received = []
    with (
        httpx.Client(base_url=live_server_url, timeout=10) as http,
        http.stream(
            "POST",
            f"/api/v1/chats/{chat.id}/messages/stream",
            json={"content": "long answer please"},
            headers={"Authorization": f"Bearer {raw}"},
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data:") and '"text"' in line:
                received.append(json.loads(line[5:])["text"])
                if len(received) == 3:
                    break
    deadline = time.monotonic() + 5
    assistant = None
    while time.monotonic() < deadline:
        # The message is closed first, then the call record is written.
        assistant = Message.objects.filter(chat=chat, role="assistant").first()
        if (
            assistant
            and assistant.status != "streaming"
            and LlmCall.objects.filter(chat_id=chat.id).exists()
        ):
            break
        time.sleep(0.05)
    assert assistant is not None and assistant.status == "interrupted"
    assert assistant.content.startswith("".join(received))
    assert len(assistant.content) < len(" ".join(f"w{i}" for i in range(40)))
    assert LlmCall.objects.get(chat_id=chat.id).status == "interrupted"


@pytest.mark.postgres
def test_concurrent_sends_keep_sequence_numbers_unique_and_ordered(setup):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL for truly concurrent writers")
    chat, raw, _, _ = setup
    barrier = threading.Barrier(4)
    statuses = []

    def worker(n):
        try:
            barrier.wait()
            response = client_for(raw).post(
                f"/api/v1/chats/{chat.id}/messages", {"content": f"m{n}"}, format="json"
            )
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    sequences = list(
        Message.objects.filter(chat=chat).order_by("sequence").values_list("sequence", flat=True)
    )
    assert sequences == list(range(1, 9))
    chat.refresh_from_db()
    assert chat.last_sequence == 8
