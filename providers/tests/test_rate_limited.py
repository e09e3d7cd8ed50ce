"""A vendor's 429 that outlasts the retries reaches clients as a 429 with Retry-After,
on every surface: the OpenAI-compatible API (the SDK raises its RateLimitError), the
direct LLM API, chat sends, and the `error` event of SSE and WebSocket streams."""

import json

import httpx
import openai
import pytest
from websockets.asyncio.client import connect

from chats.models import Chat

pytestmark = pytest.mark.django_db(transaction=True)

ATTEMPTS = 3  # PROVIDER_MAX_RETRIES (2) retries after the first attempt
DEFAULT_RETRY_AFTER = "5"  # when the vendor gives no Retry-After


@pytest.fixture
def tenant(make_tenant, llm_fakes):
    subtenant, raw, _ = make_tenant("throttled-upstream")
    return subtenant, raw


def throttle(fake, retry_after: float | None = 7, attempts: int = ATTEMPTS) -> None:
    for _ in range(attempts):
        fake.enqueue(status=429, retry_after=retry_after, error_message="Rate limit reached")


def post(base: str, raw: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(
        f"{base}{path}", json=body, headers={"Authorization": f"Bearer {raw}"}, timeout=20
    )


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events = []
    for block in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


ASK = {"messages": [{"role": "user", "content": "hi"}], "provider": "openai"}


def test_the_openai_sdk_raises_its_rate_limit_error(tenant, llm_fakes, live_server_url):
    _, raw = tenant
    throttle(llm_fakes.openai)
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=raw, max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    error = raised.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.type == "rate_limit_error" and error.code == "rate_limit_exceeded"
    assert len(llm_fakes.openai.chat_requests()) == ATTEMPTS


def test_the_openai_sdk_streaming_raises_its_rate_limit_error(tenant, llm_fakes, live_server_url):
    _, raw = tenant
    throttle(llm_fakes.openai)
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=raw, max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        stream = client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        list(stream)
    assert raised.value.response.headers["retry-after"] == "7"
    # A stream that starts fine still streams.
    llm_fakes.openai.enqueue(text="fine now", chunks=2)
    stream = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "fine now"


def test_the_gateways_own_limit_reaches_the_sdk_with_retry_after(
    make_tenant, llm_fakes, live_server_url
):
    _, raw, _ = make_tenant("own-limit", rate_limit_rpm=1)
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=raw, max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
    assert int(raised.value.response.headers["retry-after"]) >= 1
    assert raised.value.type == "rate_limit_error"


def test_direct_completion_answers_429_with_the_vendors_retry_after(
    tenant, llm_fakes, live_server_url
):
    _, raw = tenant
    throttle(llm_fakes.openai, retry_after=7)
    response = post(live_server_url, raw, "/api/v1/llm/complete", ASK)
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == "7"
    error = response.json()["error"]
    assert error["type"] == "provider_rate_limited"
    assert error["details"]["provider"] == "openai"
    assert error["details"]["upstream_status"] == 429
    assert error["details"]["retry_after"] == 7


def test_without_a_vendor_retry_after_a_default_is_sent(tenant, llm_fakes, live_server_url):
    _, raw = tenant
    throttle(llm_fakes.anthropic, retry_after=None)
    response = post(live_server_url, raw, "/api/v1/llm/complete", {**ASK, "provider": "anthropic"})
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == DEFAULT_RETRY_AFTER
    assert response.json()["error"]["details"]["retry_after"] == int(DEFAULT_RETRY_AFTER)


def test_fractional_retry_after_is_rounded_up_to_whole_seconds(tenant, llm_fakes, live_server_url):
    _, raw = tenant
    throttle(llm_fakes.openai, retry_after=1.2)
    response = post(live_server_url, raw, "/api/v1/llm/complete", ASK)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"


def test_direct_stream_error_event_carries_retry_after(tenant, llm_fakes, live_server_url):
    _, raw = tenant
    throttle(llm_fakes.openai, retry_after=None)
    response = post(live_server_url, raw, "/api/v1/llm/stream", ASK)
    name, data = sse_events(response)[-1]
    assert name == "error"
    assert data["type"] == "provider_rate_limited"
    assert data["details"]["retry_after"] == int(DEFAULT_RETRY_AFTER)


def test_sync_chat_send_answers_429_with_retry_after(tenant, llm_fakes, live_server_url):
    subtenant, raw = tenant
    chat = Chat.objects.create(subtenant=subtenant, provider="openai")
    throttle(llm_fakes.openai, retry_after=7)
    response = post(live_server_url, raw, f"/api/v1/chats/{chat.id}/messages", {"content": "hi"})
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == "7"
    error = response.json()["error"]
    assert error["type"] == "provider_rate_limited" and error["details"]["retry_after"] == 7


def test_chat_stream_error_event_carries_retry_after(tenant, llm_fakes, live_server_url):
    subtenant, raw = tenant
    chat = Chat.objects.create(subtenant=subtenant, provider="openai")
    throttle(llm_fakes.openai, retry_after=None)
    response = post(
        live_server_url, raw, f"/api/v1/chats/{chat.id}/messages/stream", {"content": "hi"}
    )
    name, data = sse_events(response)[-1]
    assert name == "error"
    assert data["details"]["retry_after"] == int(DEFAULT_RETRY_AFTER)


async def test_websocket_error_frame_carries_retry_after(tenant, llm_fakes, live_server_url):
    subtenant, raw = tenant
    chat = await Chat.objects.acreate(subtenant=subtenant, provider="openai")
    throttle(llm_fakes.openai, retry_after=None)
    url = live_server_url.replace("http://", "ws://") + f"/ws/chats/{chat.id}/"
    async with connect(
        url, additional_headers={"Authorization": f"Bearer {raw}"}, proxy=None
    ) as ws:
        await ws.send(json.dumps({"type": "message.send", "content": "hi"}))
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] in ("error", "message.completed"):
                break
    assert frame["type"] == "error"
    assert frame["error"]["type"] == "provider_rate_limited"
    assert frame["error"]["details"]["retry_after"] == int(DEFAULT_RETRY_AFTER)
