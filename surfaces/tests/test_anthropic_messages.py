"""The official `anthropic` SDK, unchanged, against the gateway's Anthropic-compatible
API (`/v1/messages`, `/v1/messages/count_tokens`), for Anthropic and OpenAI models."""

import base64
import json

import anthropic
import httpx
import pytest

from providers.models import LlmCall
from providers.records import wait_idle
from providers.testing.media import PDF, PNG
from surfaces.anthropic import events as anthropic_events

pytestmark = pytest.mark.django_db(transaction=True)

CLAUDE = "anthropic/claude-sonnet-5"
GPT = "openai/gpt-4o-mini"
HI = [{"role": "user", "content": "Hi"}]
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def sdk(make_tenant, live_server_url, llm_fakes):
    subtenant, raw, _ = make_tenant("claude-user")
    client = anthropic.Anthropic(base_url=live_server_url, api_key=raw, max_retries=0)
    return client, subtenant, llm_fakes


@pytest.fixture
def raw_post(sdk, live_server_url):
    """POST a body as it is to the gateway, with the tenant's key in `x-api-key`."""
    client, _, _ = sdk

    def post(path: str, body: dict, **headers: str) -> httpx.Response:
        sent = {"x-api-key": client.api_key, "anthropic-version": "2023-06-01", **headers}
        return httpx.post(f"{live_server_url}{path}", json=body, headers=sent, timeout=20)

    return post


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_message_from_an_anthropic_model(sdk):
    client, subtenant, fakes = sdk
    fakes.anthropic.enqueue(text="Hello from Claude", usage=(5, 3))
    message = client.messages.create(
        model=CLAUDE,
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=HI,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        # This SDK no longer lists the sampling fields; the API still takes them.
        extra_body={"temperature": 0.5, "top_k": 5},
    )
    assert message.id.startswith("msg_") and message.type == "message"
    assert (message.role, message.model) == ("assistant", CLAUDE)
    assert [(b.type, b.text) for b in message.content] == [("text", "Hello from Claude")]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 3)
    sent = fakes.anthropic.chat_requests()[-1].body
    assert (sent["model"], sent["max_tokens"], sent["system"]) == (
        "claude-sonnet-5",
        64,
        "Be brief.",
    )
    assert (sent["temperature"], sent["top_k"], sent["stop_sequences"]) == (0.5, 5, ["END"])
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    assert "metadata" not in sent and "tools" not in sent
    wait_idle()  # call records are stored in the background
    call = LlmCall.objects.get(subtenant=subtenant)
    assert (call.source, call.provider, call.input_tokens, call.output_tokens) == (
        "anthropic_compat",
        "anthropic",
        5,
        3,
    )


def test_streaming_text_and_usage(sdk):
    client, _, fakes = sdk
    fakes.anthropic.enqueue(text="one two three four", chunks=4, usage=(2, 4))
    with client.messages.stream(model=CLAUDE, max_tokens=32, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "one two three four"
    assert [(b.type, b.text) for b in final.content] == [("text", text)]
    assert final.stop_reason == "end_turn" and final.model == CLAUDE
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2, 4)
    assert fakes.anthropic.chat_requests()[-1].body["stream"] is True


def test_stream_events_come_in_anthropics_order(sdk, raw_post):
    _, _, fakes = sdk
    fakes.anthropic.enqueue(text="Hello there", chunks=2, usage=(3, 2))
    response = raw_post(
        "/v1/messages", {"model": CLAUDE, "max_tokens": 9, "messages": HI, "stream": True}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert (start["role"], start["content"], start["stop_reason"]) == ("assistant", [], None)
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == (
        "Hello there"
    )
    assert events[6][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[6][1]["usage"] == {"input_tokens": 3, "output_tokens": 2}


def test_pings_while_the_model_is_silent(sdk, raw_post, monkeypatch):
    client, _, fakes = sdk
    monkeypatch.setattr(anthropic_events, "PING_SECONDS", 0.05)
    fakes.anthropic.enqueue(text="slow answer", chunks=2, chunk_delay=0.4)
    response = raw_post(
        "/v1/messages", {"model": CLAUDE, "max_tokens": 9, "messages": HI, "stream": True}
    )
    names = [name for name, _ in sse_events(response.text)]
    assert names.count("ping") >= 3  # the one after message_start, then keepalives
    assert names[0] == "message_start" and names[-1] == "message_stop"
    # The SDK skips them.
    fakes.anthropic.enqueue(text="slow answer", chunks=2, chunk_delay=0.3)
    with client.messages.stream(model=CLAUDE, max_tokens=9, messages=HI) as stream:
        assert "".join(stream.text_stream) == "slow answer"


def test_tool_use_round_trip(sdk):
    client, _, fakes = sdk
    fakes.anthropic.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])
    first = client.messages.create(
        model=CLAUDE,
        max_tokens=64,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather in Rome?"}],
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert (call.name, call.input) == ("get_weather", {"city": "Rome"})
    sent = fakes.anthropic.chat_requests()[-1].body
    # Only the client's tools: the gateway's own are off unless asked for.
    assert sent["tools"] == [WEATHER]
    assert sent["tool_choice"] == {"type": "any"}

    fakes.anthropic.enqueue(text="Sunny in Rome.")
    second = client.messages.create(
        model=CLAUDE,
        max_tokens=64,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Rome?"},
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"},
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
        ],
    )
    assert second.content[0].text == "Sunny in Rome." and second.stop_reason == "end_turn"
    sent = fakes.anthropic.chat_requests()[-1].body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Rome"}}
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"},
            {"type": "text", "text": "And tomorrow?"},
        ],
    }


def test_streamed_tool_use(sdk):
    client, _, fakes = sdk
    fakes.anthropic.enqueue(
        text="Let me check.", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    )
    with client.messages.stream(
        model=CLAUDE, max_tokens=64, tools=[WEATHER], messages=[{"role": "user", "content": "?"}]
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[0].text == "Let me check."
    assert (final.content[1].name, final.content[1].input) == ("get_weather", {"city": "Oslo"})
    assert final.stop_reason == "tool_use"


def test_an_image_reaches_each_vendor_in_its_format(sdk):
    client, _, fakes = sdk
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)},
    }
    ask = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}]
    client.messages.create(model=CLAUDE, max_tokens=16, messages=ask)
    assert fakes.anthropic.chat_requests()[-1].body["messages"][0]["content"] == ask[0]["content"]

    client.messages.create(model=GPT, max_tokens=16, messages=ask)
    sent = fakes.openai.chat_requests()[-1].body["messages"][0]["content"]
    assert sent == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}},
    ]


def test_documents_urls_and_tool_result_images_reach_anthropic(sdk):
    client, _, fakes = sdk
    client.messages.create(
        model=CLAUDE,
        max_tokens=16,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Show me"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [
                            {"type": "text", "text": "a chart"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": b64(PNG),
                                },
                            },
                        ],
                    },
                    {
                        "type": "document",
                        "title": "q3.pdf",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": b64(PDF),
                        },
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/a.png"},
                    },
                ],
            },
        ],
    )
    blocks = fakes.anthropic.chat_requests()[-1].body["messages"][2]["content"]
    assert blocks == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": [
                {"type": "text", "text": "a chart"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)},
                },
            ],
        },
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PDF)},
            "title": "q3.pdf",
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
    ]


def test_a_bad_image_is_refused_naming_its_block(sdk):
    client, _, fakes = sdk
    lying = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": b64(PNG)},
    }
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=CLAUDE,
            max_tokens=16,
            messages=[{"role": "user", "content": [{"type": "text", "text": "x"}, lying]}],
        )
    error = caught.value.body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == "messages[0].content[1]: The data is not image/jpeg."
    assert fakes.anthropic.chat_requests() == []


def test_an_openai_model_answers_in_anthropics_format(sdk):
    client, _, fakes = sdk
    fakes.openai.enqueue(text="Hi from GPT", usage=(4, 3))
    message = client.messages.create(
        model=GPT,
        max_tokens=50,
        system="Be nice.",
        messages=HI,
        extra_body={"top_k": 3},
        thinking={"type": "enabled", "budget_tokens": 1024},
        stop_sequences=["STOP"],
    )
    assert message.model == GPT and message.content[0].text == "Hi from GPT"
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "end_turn",
        4,
        3,
    )
    sent = fakes.openai.chat_requests()[-1].body
    assert sent["model"] == "gpt-4o-mini" and sent["stop"] == ["STOP"]
    assert sent["messages"] == [
        {"role": "system", "content": "Be nice."},
        {"role": "user", "content": "Hi"},
    ]
    assert "top_k" not in sent and "thinking" not in sent

    fakes.openai.enqueue(text="streamed gpt", chunks=3, usage=(2, 2))
    with client.messages.stream(model=GPT, max_tokens=50, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "streamed gpt" and final.content[0].text == "streamed gpt"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2, 2)

    fakes.openai.enqueue(text="", finish_reason="length")
    assert client.messages.create(model=GPT, max_tokens=1, messages=HI).stop_reason == "max_tokens"


def test_thinking_and_top_k_reach_anthropic_models_only(sdk, settings):
    client, _, fakes = sdk
    thinking = {"type": "enabled", "budget_tokens": 1024}
    ask = {"model": CLAUDE, "max_tokens": 2048, "messages": HI, "thinking": thinking}
    client.messages.create(**ask, extra_body={"top_k": 4})
    sent = fakes.anthropic.chat_requests()[-1].body
    assert (sent["thinking"], sent["top_k"]) == (thinking, 4)
    # A fallback of another vendor still serves; it gets neither field.
    settings.LLM_FALLBACKS = ["openai"]
    for _ in range(3):
        fakes.anthropic.enqueue(status=500)
    fakes.openai.enqueue(text="from the fallback")
    answer = client.messages.create(**ask, extra_body={"top_k": 4})
    assert answer.content[0].text == "from the fallback"
    sent = fakes.openai.chat_requests()[-1].body
    assert "thinking" not in sent and "top_k" not in sent


def test_openai_tool_calls_and_results(sdk):
    client, _, fakes = sdk
    fakes.openai.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])
    first = client.messages.create(
        model=GPT,
        max_tokens=50,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather?"}],
    )
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert (call.type, call.name, call.input) == ("tool_use", "get_weather", {"city": "Rome"})
    sent = fakes.openai.chat_requests()[-1].body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]

    fakes.openai.enqueue(text="Sunny.")
    client.messages.create(
        model=GPT,
        max_tokens=50,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ],
    )
    sent = fakes.openai.chat_requests()[-1].body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}


def test_count_tokens_exact_from_anthropic(sdk):
    client, _, fakes = sdk
    counted = client.messages.with_raw_response.count_tokens(
        model=CLAUDE,
        system="be brief",
        messages=[{"role": "user", "content": "one two three"}],
        tools=[WEATHER],
    )
    assert counted.headers["x-token-count"] == "exact"
    assert counted.parse().input_tokens == 5  # the fake counts words
    sent = fakes.anthropic.count_tokens_requests()[-1].body
    assert sent["model"] == "claude-sonnet-5" and sent["system"] == "be brief"
    assert sent["messages"] == [{"role": "user", "content": "one two three"}]
    assert sent["tools"] == [WEATHER] and "max_tokens" not in sent
    assert fakes.anthropic.chat_requests() == []


def test_count_tokens_estimated_elsewhere(sdk):
    client, _, fakes = sdk
    counted = client.messages.with_raw_response.count_tokens(
        model=GPT, system="be brief", messages=[{"role": "user", "content": "one two three"}]
    )
    assert counted.headers["x-token-count"] == "estimate"
    # 21 characters (5.25 tokens, rounded up) and 4 for each of the two messages.
    assert counted.parse().input_tokens == 6 + 8
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)},
    }
    with_image = client.messages.count_tokens(
        model=GPT,
        system="be brief",
        messages=[{"role": "user", "content": [{"type": "text", "text": "one two three"}, image]}],
    )
    assert with_image.input_tokens == 14 + 1000
    assert fakes.openai.requests == []


def test_errors_are_the_sdks_own_exceptions(sdk, live_server_url, admin_key):
    client, _, fakes = sdk
    bad = anthropic.Anthropic(base_url=live_server_url, api_key="lw_nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(model=CLAUDE, max_tokens=5, messages=HI)
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Invalid or revoked API key."},
    }
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.count_tokens(model=CLAUDE, messages=HI)

    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=CLAUDE, max_tokens=5, messages=HI, extra_body={"temperature": 5}
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert caught.value.body["error"]["message"].startswith("temperature: ")

    admin = anthropic.Anthropic(base_url=live_server_url, api_key=admin_key, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError):
        admin.messages.create(model=CLAUDE, max_tokens=5, messages=HI)

    fakes.anthropic.enqueue(status=404, error_message="model: claude-nine")
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="anthropic/claude-nine", max_tokens=5, messages=HI)
    assert caught.value.body["error"]["type"] == "not_found_error"
    assert fakes.anthropic.chat_requests()[-1].body["model"] == "claude-nine"


def test_a_vendors_429_is_the_sdks_rate_limit_error(sdk):
    client, _, fakes = sdk
    for _ in range(3):  # the first attempt and PROVIDER_MAX_RETRIES (2) retries
        fakes.anthropic.enqueue(status=429, retry_after=7, error_message="Rate limit reached")
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=5, messages=HI)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"]["type"] == "rate_limit_error"

    for _ in range(3):
        fakes.openai.enqueue(status=429, retry_after=2)
    with (
        pytest.raises(anthropic.RateLimitError) as caught,
        client.messages.stream(model=GPT, max_tokens=5, messages=HI) as stream,
    ):
        list(stream.text_stream)
    assert caught.value.response.headers["retry-after"] == "2"


def test_a_failure_mid_stream_is_an_error_event(sdk):
    client, _, fakes = sdk
    fakes.anthropic.enqueue(
        text="one two three", chunks=3, error_after_chunks=1, error_message="Overloaded"
    )
    received = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model=CLAUDE, max_tokens=9, messages=HI) as stream,
    ):
        for text in stream.text_stream:
            received.append(text)
    assert received == ["one t"]  # the first of three pieces
    assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_validation_and_auth_answers_in_anthropics_shape(sdk, raw_post, live_server_url):
    response = raw_post("/v1/messages", {"model": CLAUDE, "messages": HI})
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "max_tokens: This field is required.",
        },
    }
    response = raw_post(
        "/v1/messages",
        {"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
    )
    assert response.json()["error"]["message"] == 'messages.0.role: "system" is not a valid choice.'
    response = raw_post(
        "/v1/messages",
        {
            "model": CLAUDE,
            "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "audio"}]}],
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        "messages[0].content[0]: Unsupported block"
    )

    missing = httpx.post(f"{live_server_url}/v1/messages", json={"model": CLAUDE}, timeout=10)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    # The key in x-api-key (as Anthropic's clients send it) or as a Bearer token.
    ok = raw_post("/v1/messages/count_tokens", {"model": GPT, "messages": HI})
    assert ok.status_code == 200 and ok.json() == {"input_tokens": 5}


def test_server_side_tools_only_when_asked(sdk):
    client, _, fakes = sdk
    client.messages.create(
        model=CLAUDE, max_tokens=5, messages=HI, extra_body={"server_tools": True}
    )
    offered = [t["name"] for t in fakes.anthropic.chat_requests()[-1].body.get("tools", [])]
    assert offered  # the built-in functions
    client.messages.create(model=CLAUDE, max_tokens=5, messages=HI)
    assert "tools" not in fakes.anthropic.chat_requests()[-1].body


def test_the_schema_lists_both_operations(admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    create = schema["paths"]["/v1/messages"]["post"]
    count = schema["paths"]["/v1/messages/count_tokens"]["post"]
    assert create["operationId"] == "v1_messages_create"
    assert count["operationId"] == "v1_messages_count_tokens"
    for operation in (create, count):
        error = operation["responses"]["429"]["content"]["application/json"]["schema"]
        assert error["$ref"].endswith("/AnthropicError")
    assert "X-Token-Count" in count["responses"]["200"]["headers"]
