"""`/api/v1/llm/*` through the ASGI app, each provider against its fake vendor server."""

import pytest
from asgiref.sync import sync_to_async

from conftest import async_client_for, read_sse
from providers.core.descriptors import all_descriptors
from providers.models import LlmCall
from providers.records import wait_idle

pytestmark = pytest.mark.django_db(transaction=True)

PROVIDERS = [d.name for d in all_descriptors()]


@pytest.fixture
def tenant(make_tenant):
    subtenant, raw, _ = make_tenant("acme")
    return subtenant, async_client_for(raw)


async def post(client, path, body):
    return await client.post(path, body, content_type="application/json")


def ask(provider: str, text: str = "Hello there", **extra):
    return {"provider": provider, "messages": [{"role": "user", "content": text}], **extra}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_completion_returns_text_and_usage_and_is_recorded(llm_fakes, tenant, provider):
    subtenant, client = tenant
    llm_fakes[provider].enqueue(text="Hi from the model", usage=(11, 4))
    response = await post(
        client, "/api/v1/llm/complete", ask(provider, temperature=0.3, max_tokens=50)
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"] == {
        "role": "assistant",
        "content": "Hi from the model",
        "tool_calls": [],
    }
    assert body["provider"] == provider
    assert body["finish_reason"] == "stop"
    assert body["usage"] == {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}

    sent = llm_fakes[provider].chat_requests()[-1].body
    assert "Hello there" in str(sent)
    assert "0.3" in str(sent) and "50" in str(sent)

    wait_idle()  # call records are stored in the background
    call = await LlmCall.objects.aget(subtenant=subtenant)
    assert (call.provider, call.status, call.input_tokens, call.output_tokens) == (
        provider,
        "ok",
        11,
        4,
    )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_stream_sends_named_events_in_order(llm_fakes, tenant, provider):
    _, client = tenant
    llm_fakes[provider].enqueue(text="one two three four five six", chunks=4, usage=(3, 6))
    response = await post(client, "/api/v1/llm/stream", ask(provider))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = await read_sse(response)
    names = [name for name, _ in events]
    assert names[0] == "message.created" and names[-1] == "message.completed"
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) >= 3
    completed = events[-1][1]
    assert "".join(deltas) == completed["content"] == "one two three four five six"
    assert completed["usage"]["total_tokens"] == 9
    assert completed["finish_reason"] == "stop"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_client_side_tool_call_round_trip(llm_fakes, tenant, provider):
    _, client = tenant
    fake = llm_fakes[provider]
    fake.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    first = await post(
        client, "/api/v1/llm/complete", ask(provider, "Weather in Paris?", tools=[tool])
    )
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["finish_reason"] == "tool_calls"
    [call] = body["message"]["tool_calls"]
    assert call["name"] == "get_weather" and call["arguments"] == {"city": "Paris"}
    assert "get_weather" in str(fake.chat_requests()[-1].body)

    fake.enqueue(text="It is sunny in Paris.")
    follow_up = {
        "provider": provider,
        "tools": [tool],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {
                "role": "tool",
                "tool_call_id": call["id"],
                "name": "get_weather",
                "content": "Sunny, 25C",
            },
        ],
    }
    second = await post(client, "/api/v1/llm/complete", follow_up)
    assert second.status_code == 200, second.content
    assert second.json()["message"]["content"] == "It is sunny in Paris."
    received = str(fake.chat_requests()[-1].body)
    assert "Sunny, 25C" in received
    if provider != "local":  # Ollama's wire format has no tool call ids
        assert call["id"] in received


async def test_legacy_functions_format_is_offered_as_a_tool(llm_fakes, tenant):
    _, client = tenant
    functions = [{"name": "lookup", "description": "Look up", "parameters": {"type": "object"}}]
    response = await post(client, "/api/v1/llm/complete", ask("openai", functions=functions))
    assert response.status_code == 200
    sent = llm_fakes.openai.chat_requests()[-1].body
    assert sent["tools"][0]["function"]["name"] == "lookup"


async def test_rate_limit_is_retried_then_succeeds(llm_fakes, tenant):
    _, client = tenant
    llm_fakes.anthropic.enqueue(status=429, retry_after=0).enqueue(text="after retry")
    response = await post(client, "/api/v1/llm/complete", ask("anthropic"))
    assert response.status_code == 200
    assert response.json()["message"]["content"] == "after retry"
    assert len(llm_fakes.anthropic.chat_requests()) == 2


async def test_server_errors_exhausting_retries_answer_502_with_upstream_status(llm_fakes, tenant):
    _, client = tenant
    for _ in range(3):
        llm_fakes.openai.enqueue(status=500)
    response = await post(client, "/api/v1/llm/complete", ask("openai"))
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["details"]["provider"] == "openai"
    assert error["details"]["upstream_status"] == 500
    assert len(llm_fakes.openai.chat_requests()) == 3
    wait_idle()
    call = await LlmCall.objects.aget()
    assert call.status == "error" and call.upstream_status == 500


async def test_upstream_timeout_answers_504(llm_fakes, tenant, settings):
    _, client = tenant
    settings.PROVIDER_READ_TIMEOUT = 0.3
    settings.PROVIDER_MAX_RETRIES = 0
    llm_fakes.local.enqueue(delay=2.0)
    response = await post(client, "/api/v1/llm/complete", ask("local"))
    assert response.status_code == 504
    assert response.json()["error"]["details"]["provider"] == "local"


async def test_invalid_request_upstream_answers_400_without_retry(llm_fakes, tenant):
    _, client = tenant
    llm_fakes.private.enqueue(status=400, error_message="max_tokens is too large")
    response = await post(client, "/api/v1/llm/complete", ask("private"))
    assert response.status_code == 400
    assert "max_tokens is too large" in response.json()["error"]["message"]
    assert len(llm_fakes.private.chat_requests()) == 1


async def test_stream_cut_off_midway_ends_with_an_error_event(llm_fakes, tenant):
    _, client = tenant
    llm_fakes.openai.enqueue(text="a b c d e f g h", chunks=6, cut_after_chunks=3)
    response = await post(client, "/api/v1/llm/stream", ask("openai"))
    events = await read_sse(response)
    names = [name for name, _ in events]
    assert names[-1] == "error"
    assert "message.completed" not in names
    assert events[-1][1]["details"]["provider"] == "openai"
    wait_idle()
    call = await LlmCall.objects.aget()
    assert call.status == "error"


async def test_missing_key_is_a_clear_400(llm_fakes, tenant, settings):
    _, client = tenant
    settings.ANTHROPIC_API_KEY = ""
    for path in ("/api/v1/llm/complete", "/api/v1/llm/stream"):
        response = await post(client, path, ask("anthropic"))
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["type"] == "provider_not_configured"
        assert "ANTHROPIC_API_KEY" in error["message"]
    assert llm_fakes.anthropic.chat_requests() == []


async def test_fallback_from_a_failing_provider_to_a_working_one(llm_fakes, tenant, settings):
    _, client = tenant
    settings.PROVIDER_MAX_RETRIES = 0
    llm_fakes.openai.enqueue(status=503)
    llm_fakes.anthropic.enqueue(text="from the fallback")
    response = await post(client, "/api/v1/llm/complete", ask("openai", fallbacks=["anthropic"]))
    assert response.status_code == 200, response.content
    assert response.json()["provider"] == "anthropic"
    assert response.json()["message"]["content"] == "from the fallback"


async def test_provider_model_syntax_and_subtenant_default(llm_fakes, make_tenant):
    _, raw, _ = await sync_to_async(make_tenant)("anthro", default_provider="anthropic")
    client = async_client_for(raw)
    response = await post(
        client, "/api/v1/llm/complete", {"messages": [{"role": "user", "content": "x"}]}
    )
    assert response.json()["provider"] == "anthropic"
    response = await post(
        client,
        "/api/v1/llm/complete",
        {"model": "local/qwen2", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.json()["provider"] == "local"
    assert llm_fakes.local.chat_requests()[-1].body["model"] == "qwen2"


async def test_admin_key_must_name_a_subtenant(llm_fakes, admin_key, make_tenant):
    subtenant, _, _ = await sync_to_async(make_tenant)("acme")
    client = async_client_for(admin_key)
    response = await post(client, "/api/v1/llm/complete", ask("openai"))
    assert response.status_code == 400
    assert "subtenant" in response.json()["error"]["details"]
    response = await post(
        client, "/api/v1/llm/complete", ask("openai", subtenant=str(subtenant.id))
    )
    assert response.status_code == 200
    wait_idle()
    assert await LlmCall.objects.filter(subtenant=subtenant).acount() == 1


async def test_subtenant_key_cannot_bill_another_subtenant(llm_fakes, tenant, make_tenant):
    _, client = tenant
    other, _, _ = await sync_to_async(make_tenant)("other")
    response = await post(client, "/api/v1/llm/complete", ask("openai", subtenant=str(other.id)))
    assert response.status_code == 404
    assert llm_fakes.openai.chat_requests() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 9}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "provider": "acme"}, None),
        ({"messages": "hello"}, "messages"),
    ],
)
async def test_invalid_direct_requests_are_400(llm_fakes, tenant, body, field):
    _, client = tenant
    response = await post(client, "/api/v1/llm/complete", body)
    assert response.status_code == 400, response.content
    if field:
        assert field in response.json()["error"]["details"]
    assert llm_fakes.openai.chat_requests() == []


async def test_models_lists_every_provider(llm_fakes, tenant, settings):
    _, client = tenant
    settings.PRIVATE_CLOUD_ENDPOINT = ""
    response = await client.get("/api/v1/llm/models")
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["providers"]}
    assert set(rows) == set(PROVIDERS)
    assert "gpt-4o-mini" in rows["openai"]["models"]
    assert rows["private"]["configured"] is False
    assert rows["local"]["models"]


def test_client_disconnect_on_stream_closes_the_upstream_request(
    llm_fakes, make_tenant, live_server_url
):
    import json
    import time

    import httpx

    _, raw, _ = make_tenant("streamer")
    words = " ".join(f"w{i}" for i in range(60))
    llm_fakes.openai.enqueue(text=words, chunks=60, chunk_delay=0.05)
    with (
        httpx.Client(base_url=live_server_url, timeout=10) as http,
        http.stream(
            "POST",
            "/api/v1/llm/stream",
            json=ask("openai"),
            headers={"Authorization": f"Bearer {raw}"},
        ) as response,
    ):
        deltas = 0
        for line in response.iter_lines():
            if line.startswith("data:") and "text" in json.loads(line[5:]):
                deltas += 1
                if deltas == 2:
                    break
    # The gateway drops the upstream connection instead of reading the rest of it.
    deadline = time.monotonic() + 5
    while llm_fakes.openai.aborted_streams == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert llm_fakes.openai.aborted_streams == 1
    while not LlmCall.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert LlmCall.objects.get().status == "interrupted"


async def test_sse_clients_sending_accept_event_stream_are_served(llm_fakes, tenant):
    _, client = tenant
    llm_fakes.openai.enqueue(text="hi there", chunks=2)
    response = await client.post(
        "/api/v1/llm/stream",
        ask("openai"),
        content_type="application/json",
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200
    assert [name for name, _ in await read_sse(response)][-1] == "message.completed"
    refused = await client.post(
        "/api/v1/llm/stream",
        {"messages": []},
        content_type="application/json",
        headers={"Accept": "text/event-stream"},
    )
    assert refused.status_code == 400
    assert refused.content.decode().startswith("event: error\ndata: ")
