"""Every model call has a total deadline and an idle-between-events limit.

Through the running app (uvicorn) against fake vendors that drip their answers one
byte at a time: each socket read gets data, so only a limit that counts whole events
(and a deadline over the whole call) ends such a call.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from chats.models import Chat

pytestmark = pytest.mark.django_db(transaction=True)

VENDORS = ["openai", "anthropic", "local"]
# The client gives up long before a dripping answer could finish, or be retried twice.
CLIENT_TIMEOUT = 15


@pytest.fixture
def http(live_server_url, make_tenant):
    subtenant, raw, _ = make_tenant("acme")
    headers = {"Authorization": f"Bearer {raw}"}
    with httpx.Client(base_url=live_server_url, timeout=CLIENT_TIMEOUT, headers=headers) as client:
        client.subtenant = subtenant
        yield client


@pytest.fixture
def tight(settings, llm_fakes):
    settings.PROVIDER_TOTAL_TIMEOUT = 2
    settings.PROVIDER_IDLE_TIMEOUT = 1
    return llm_fakes


@pytest.fixture
def roomy(settings, llm_fakes):
    settings.PROVIDER_TOTAL_TIMEOUT = 10
    settings.PROVIDER_IDLE_TIMEOUT = 1
    return llm_fakes


def ask(provider: str, **extra):
    return {"provider": provider, "messages": [{"role": "user", "content": "hi"}], **extra}


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def wait_for_abort(fake) -> int:
    """The gateway hung up on the vendor instead of reading the rest of the answer."""
    deadline = time.monotonic() + 5
    while fake.aborted_streams == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return fake.aborted_streams


def stream(http: httpx.Client, path: str, body: dict) -> list[tuple[str, dict]]:
    with http.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        return sse_events(response)


@pytest.mark.parametrize("provider", VENDORS)
def test_dripping_answer_is_a_504_after_the_deadline_without_retries(tight, http, provider):
    tight[provider].enqueue(text="too slow to matter", drip=0.2)

    response = http.post("/api/v1/llm/complete", json=ask(provider))

    assert response.status_code == 504, response.text
    error = response.json()["error"]
    assert error["type"] == "provider_timeout"
    assert error["details"]["provider"] == provider
    assert len(tight[provider].chat_requests()) == 1
    assert wait_for_abort(tight[provider]) == 1


@pytest.mark.parametrize("provider", VENDORS)
def test_dripping_stream_ends_with_a_timeout_error_without_retries(tight, http, provider):
    tight[provider].enqueue(text="too slow to matter", drip=0.2)

    events = stream(http, "/api/v1/llm/stream", ask(provider))

    assert [name for name, _ in events] == ["message.created", "error"]
    assert events[-1][1]["type"] == "provider_timeout"
    assert len(tight[provider].chat_requests()) == 1
    assert wait_for_abort(tight[provider]) == 1


def test_openai_compatible_endpoint_answers_504_for_a_dripping_vendor(tight, http):
    tight.openai.enqueue(text="too slow to matter", drip=0.2)

    response = http.post(
        "/v1/chat/completions",
        json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )

    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "provider_timeout"
    assert len(tight.openai.chat_requests()) == 1


def test_the_deadline_covers_fallbacks_too(tight, http):
    tight.openai.enqueue(text="too slow to matter", drip=0.2)

    response = http.post("/api/v1/llm/complete", json=ask("openai", fallbacks=["anthropic"]))

    assert response.status_code == 504, response.text
    assert len(tight.openai.chat_requests()) == 1
    assert tight.anthropic.chat_requests() == []


@pytest.mark.parametrize("provider", VENDORS)
def test_slow_but_steady_stream_completes(roomy, http, provider):
    words = [f"w{i}" for i in range(10)]
    roomy[provider].enqueue(text=" ".join(words), chunks=10, chunk_delay=0.3)

    events = stream(http, "/api/v1/llm/stream", ask(provider))

    assert events[-1][0] == "message.completed"
    assert "".join(data["text"] for name, data in events if name == "delta") == " ".join(words)
    assert len(roomy[provider].chat_requests()) == 1


@pytest.mark.parametrize("provider", VENDORS)
def test_a_stalled_stream_is_retried_while_the_deadline_leaves_time(roomy, http, provider):
    roomy[provider].enqueue(text="never arrives", drip=0.2)
    roomy[provider].enqueue(text="second try")

    events = stream(http, "/api/v1/llm/stream", ask(provider))

    assert events[-1][0] == "message.completed"
    assert events[-1][1]["content"] == "second try"
    assert len(roomy[provider].chat_requests()) == 2


def test_a_stream_that_stalls_after_some_text_keeps_the_partial_answer(roomy, http):
    chat = Chat.objects.create(subtenant=http.subtenant)
    roomy.openai.enqueue(text="one two three four", chunks=4, drip=0.2, drip_after_chunks=2)

    events = stream(
        http, f"/api/v1/chats/{chat.id}/messages/stream", {"content": "go", "provider": "openai"}
    )

    names = [name for name, _ in events]
    assert names[-1] == "error" and names.count("delta") == 2
    assert events[-1][1]["type"] == "provider_timeout"
    partial = "".join(data["text"] for name, data in events if name == "delta")
    messages = http.get(f"/api/v1/chats/{chat.id}/messages").json()["results"]
    assistant = messages[-1]
    assert (assistant["role"], assistant["status"]) == ("assistant", "error")
    assert assistant["content"] == partial and assistant["error"]
    assert len(roomy.openai.chat_requests()) == 1


def test_a_fallback_answers_in_the_time_the_primary_left(roomy, http):
    for _ in range(3):  # the first try and both retries stall
        roomy.openai.enqueue(text="never arrives", drip=0.2)
    roomy.anthropic.enqueue(text="from the fallback")

    events = stream(http, "/api/v1/llm/stream", ask("openai", fallbacks=["anthropic"]))

    assert events[-1][0] == "message.completed"
    assert events[-1][1]["content"] == "from the fallback"
    assert events[-1][1]["provider"] == "anthropic"
    assert len(roomy.openai.chat_requests()) == 3
    assert len(roomy.anthropic.chat_requests()) == 1
