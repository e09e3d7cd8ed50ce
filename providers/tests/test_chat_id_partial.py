"""`/v1/chat/completions` with `X-Chat-ID`: the exchange is stored however the stream ends."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from chats.models import Chat

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def http(live_server_url, make_tenant, llm_fakes):
    subtenant, raw, _ = make_tenant("acme")
    headers = {"Authorization": f"Bearer {raw}"}
    with httpx.Client(base_url=live_server_url, timeout=10, headers=headers) as client:
        client.subtenant = subtenant
        yield client


def completion(question: str) -> dict:
    return {
        "model": "openai/gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": question}],
    }


def settled_messages(http: httpx.Client, chat: Chat) -> list[dict]:
    """The chat's messages over the API, once an assistant message is no longer streaming."""
    deadline = time.monotonic() + 5
    while True:
        messages = http.get(f"/api/v1/chats/{chat.id}/messages").json()["results"]
        done = [m for m in messages if m["role"] == "assistant" and m["status"] != "streaming"]
        if done or time.monotonic() > deadline:
            return messages
        time.sleep(0.05)


def content_of(line: str) -> str | None:
    if not line.startswith("data: ") or line == "data: [DONE]":
        return None
    choices = json.loads(line[6:]).get("choices") or [{}]
    return choices[0].get("delta", {}).get("content") or None


def test_client_leaving_mid_stream_keeps_the_partial_answer(http, llm_fakes):
    chat = Chat.objects.create(subtenant=http.subtenant)
    words = " ".join(f"w{i}" for i in range(40))
    llm_fakes.openai.enqueue(text=words, chunks=40, chunk_delay=0.05)
    received: list[str] = []
    with http.stream(
        "POST",
        "/v1/chat/completions",
        json=completion("tell me a long story"),
        headers={"X-Chat-ID": str(chat.id)},
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if text := content_of(line):
                received.append(text)
                if len(received) == 2:
                    break

    messages = settled_messages(http, chat)

    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "interrupted"),
    ]
    assert messages[0]["content"] == "tell me a long story"
    partial = messages[1]["content"]
    assert partial.startswith("".join(received)) and len(partial) < len(words)
    assert messages[1]["provider"] == "openai"


def test_provider_failing_mid_stream_keeps_the_partial_answer_as_an_error(http, llm_fakes):
    chat = Chat.objects.create(subtenant=http.subtenant)
    llm_fakes.openai.enqueue(
        text="one two three four", chunks=4, error_after_chunks=2, error_message="Overloaded"
    )
    with http.stream(
        "POST",
        "/v1/chat/completions",
        json=completion("count to four"),
        headers={"X-Chat-ID": str(chat.id)},
    ) as response:
        lines = list(response.iter_lines())
    received = [text for line in lines if (text := content_of(line))]
    assert any('"error"' in line for line in lines)

    messages = settled_messages(http, chat)

    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "error"),
    ]
    assert len(received) == 2
    assert messages[1]["content"] == "".join(received) == "one two th"
    assert "Overloaded" in messages[1]["error"]


def test_a_failed_call_without_a_stream_is_stored_as_an_error(http, llm_fakes):
    chat = Chat.objects.create(subtenant=http.subtenant)
    for _ in range(3):
        llm_fakes.openai.enqueue(status=500, error_message="upstream broke")

    response = http.post(
        "/v1/chat/completions",
        json={**completion("hello?"), "stream": False},
        headers={"X-Chat-ID": str(chat.id)},
    )

    assert response.status_code == 502
    messages = settled_messages(http, chat)
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "error"),
    ]
    assert messages[1]["content"] == "" and "upstream broke" in messages[1]["error"]
