"""What each vendor actually receives: request translation, asserted on the fake's log."""

from __future__ import annotations

import json

import pytest

from providers.core.types import ChatRequest, Finished, GenerationParams, Message
from providers.tests.conftest import WEATHER, Upstream, ask

PARIS = {"name": "get_weather", "arguments": {"city": "Paris"}}
OSLO = {"name": "get_weather", "arguments": {"city": "Oslo"}}


async def tool_round_trip(upstream: Upstream, calls: list[dict]) -> list[dict]:
    """Model asks for tools, we answer each, the model replies; returns both bodies."""
    history = (Message("system", "You are terse."), Message("user", "Weather in Paris and Oslo?"))
    upstream.fake.enqueue(tool_calls=calls)
    upstream.fake.enqueue(text="Paris 21C, Oslo 9C")

    first = await upstream.provider.complete(ChatRequest("", history, tools=(WEATHER,)))
    results = tuple(
        Message("tool", json.dumps({"temp": 21 - 12 * i}), tool_call_id=call.id)
        for i, call in enumerate(first.tool_calls)
    )
    second = await upstream.provider.complete(
        ChatRequest("", (*history, first.to_message(), *results), tools=(WEATHER,))
    )

    assert second.text == "Paris 21C, Oslo 9C"
    assert len(first.tool_calls) == len(calls)
    return [r.body for r in upstream.fake.chat_requests()]


@pytest.mark.parametrize("upstream", ["openai", "private"], indirect=True)
async def test_openai_tool_round_trip_sends_tool_calls_and_tool_messages(upstream: Upstream):
    first, second = await tool_round_trip(upstream, [PARIS])

    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER.parameters,
            },
        }
    ]
    assert first["messages"][0] == {"role": "system", "content": "You are terse."}
    assert second["messages"][2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": '{"temp": 21}'},
    ]


@pytest.mark.parametrize("upstream", ["openai"], indirect=True)
async def test_openai_stream_asks_for_usage_in_the_final_chunk(upstream: Upstream):
    _ = [e async for e in upstream.provider.stream(ask())]

    body = upstream.fake.chat_requests()[-1].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert upstream.fake.requests[-1].headers["authorization"] == "Bearer test-key"


@pytest.mark.parametrize("upstream", ["openai"], indirect=True)
async def test_openai_tool_choice_and_response_format_pass_through(upstream: Upstream):
    params = GenerationParams(response_format={"type": "json_object"}, extra={"seed": 7})
    request = ChatRequest(
        "", (Message("user", "hi"),), tools=(WEATHER,), tool_choice="get_weather", params=params
    )

    await upstream.provider.complete(request)

    body = upstream.fake.chat_requests()[-1].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["response_format"] == {"type": "json_object"}
    assert body["seed"] == 7


@pytest.mark.parametrize("upstream", ["private"], indirect=True)
async def test_private_cloud_without_key_sends_no_authorization_and_keeps_slashed_model(
    upstream: Upstream,
):
    await upstream.provider.complete(
        ChatRequest("meta-llama/Llama-3-70B", (Message("user", "hi"),))
    )

    request = upstream.fake.chat_requests()[-1]
    assert "authorization" not in request.headers
    assert request.body["model"] == "meta-llama/Llama-3-70B"


@pytest.mark.parametrize("upstream", ["anthropic"], indirect=True)
async def test_anthropic_round_trip_uses_system_tool_use_and_merged_tool_results(
    upstream: Upstream,
):
    first, second = await tool_round_trip(upstream, [PARIS, OSLO])

    assert first["system"] == "You are terse."
    assert first["max_tokens"] == 1024  # Anthropic requires it; the configured default
    assert first["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER.parameters,
        }
    ]
    assert all(m["role"] != "system" for m in second["messages"])
    assert second["messages"] == [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_0",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_0", "content": '{"temp": 21}'},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp": 9}'},
            ],
        },
    ]


@pytest.mark.parametrize("upstream", ["anthropic"], indirect=True)
async def test_anthropic_tool_choice_maps_to_its_own_shape(upstream: Upstream):
    for choice, expected in [
        ("required", {"type": "any"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
        ("auto", {"type": "auto"}),
    ]:
        await upstream.provider.complete(ask(tools=(WEATHER,), tool_choice=choice))
        assert upstream.fake.chat_requests()[-1].body["tool_choice"] == expected

    await upstream.provider.complete(ask(tools=(WEATHER,), tool_choice="none"))
    assert "tools" not in upstream.fake.chat_requests()[-1].body


@pytest.mark.parametrize("upstream", ["anthropic"], indirect=True)
async def test_anthropic_sends_the_key_and_json_schema_output(upstream: Upstream):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    format_ = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    request = ChatRequest(
        "", (Message("user", "hi"),), params=GenerationParams(response_format=format_)
    )

    await upstream.provider.complete(request)

    sent = upstream.fake.chat_requests()[-1]
    assert "test-key" in (sent.headers.get("x-api-key", "") + sent.headers.get("authorization", ""))
    assert sent.body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


@pytest.mark.parametrize("upstream", ["local"], indirect=True)
async def test_ollama_round_trip_sends_object_arguments_and_tool_names(upstream: Upstream):
    first, second = await tool_round_trip(upstream, [PARIS])

    assert first["stream"] is False
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert second["messages"][2:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": '{"temp": 21}', "tool_name": "get_weather"},
    ]


@pytest.mark.parametrize("upstream", ["local"], indirect=True)
async def test_ollama_streams_ndjson_with_options_and_json_format(upstream: Upstream):
    params = GenerationParams(temperature=0.1, top_p=0.9, response_format={"type": "json_object"})
    request = ChatRequest("", (Message("user", "hi"),), params=params)

    events = [e async for e in upstream.provider.stream(request)]

    body = upstream.fake.chat_requests()[-1].body
    assert body["stream"] is True
    assert body["options"] == {"temperature": 0.1, "top_p": 0.9}
    assert body["format"] == "json"
    assert isinstance(events[-1], Finished)
