"""Behaviour every provider shares, each run against its fake vendor over real HTTP."""

from __future__ import annotations

import pytest

from providers.core.errors import (
    ModelNotFoundError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderStreamInterruptedError,
    ProviderTimeoutError,
    ProviderUpstreamError,
)
from providers.core.retry import RetryPolicy, resilient
from providers.core.types import (
    ChatRequest,
    Finished,
    GenerationParams,
    Message,
    TextDelta,
    ToolCallComplete,
    Usage,
    UsageEvent,
    collect,
)
from providers.tests.conftest import (
    FAST,
    PROVIDER_NAMES,
    WEATHER,
    Upstream,
    ask,
    attempted,
    drain,
    failures,
    text_of,
)

# By kind (the wire protocol), so a vendor described with an existing adapter is covered.
LIMIT_FIELD = {
    "openai": "max_completion_tokens",
    "anthropic": "max_tokens",
    "ollama": "num_predict",
    "openai_compatible": "max_tokens",  # compatible servers rarely know max_completion_tokens
}
STOP_FIELD = {"anthropic": "stop_sequences"}


async def events_of(upstream: Upstream, request: ChatRequest | None = None) -> list:
    return [event async for event in upstream.provider.stream(request or ask())]


async def test_completion_returns_text_usage_and_finish_reason(upstream: Upstream):
    upstream.fake.enqueue(text="Sunny and mild", usage=(12, 3))

    result = await upstream.provider.complete(ask())

    assert result.text == "Sunny and mild"
    assert result.usage == Usage(12, 3)
    assert result.usage.total_tokens == 15
    assert result.finish_reason == "stop"
    assert result.provider == upstream.name
    assert result.tool_calls == ()


async def test_completion_without_script_echoes_the_last_user_message(upstream: Upstream):
    result = await upstream.provider.complete(ask("ping"))

    assert result.text == "echo: ping"


async def test_stream_yields_several_text_deltas_then_usage_then_finish(upstream: Upstream):
    upstream.fake.enqueue(text="Hello streaming world", chunks=4, usage=(7, 3))

    events = await events_of(upstream)

    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) == 4
    assert "".join(texts) == "Hello streaming world"
    assert events[-2:] == [UsageEvent(Usage(7, 3)), Finished("stop")]


async def test_stream_and_completion_report_the_same_usage(upstream: Upstream):
    request = ask("three words here")
    streamed = await collect(upstream.provider.stream(request), provider="x", model="y")
    completed = await upstream.provider.complete(request)

    assert streamed.usage == completed.usage
    assert streamed.usage.input_tokens == 3
    assert streamed.usage.output_tokens == 4  # "echo: three words here"


async def test_stream_reports_length_finish_when_the_model_hits_max_tokens(upstream: Upstream):
    vendor_reason = {"anthropic": "max_tokens"}.get(upstream.name, "length")
    upstream.fake.enqueue(text="Cut short", finish_reason=vendor_reason)

    events = await events_of(upstream)

    assert events[-1] == Finished("length")


async def test_stream_emits_a_complete_tool_call_with_parsed_arguments(upstream: Upstream):
    upstream.fake.enqueue(
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {"name": "get_weather", "arguments": {"city": "Oslo"}},
        ]
    )

    events = await events_of(upstream, ask(tools=(WEATHER,)))

    calls = [e.call for e in events if isinstance(e, ToolCallComplete)]
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert all(c.id for c in calls) and calls[0].id != calls[1].id
    assert events[-1] == Finished("tool_calls")


async def test_completion_returns_tool_calls(upstream: Upstream):
    upstream.fake.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])

    result = await upstream.provider.complete(ask(tools=(WEATHER,)))

    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_weather", {"city": "Rome"})]
    assert result.finish_reason == "tool_calls"


async def test_rate_limit_then_success_is_retried(upstream: Upstream):
    upstream.fake.enqueue(status=429, retry_after=0)
    upstream.fake.enqueue(text="after the wait")

    result = await resilient([upstream.provider], FAST).complete(ask())

    assert result.text == "after the wait"
    assert len(upstream.fake.chat_requests()) == 2


async def test_rate_limited_stream_is_retried_before_anything_is_delivered(upstream: Upstream):
    upstream.fake.enqueue(status=429, retry_after=0)
    upstream.fake.enqueue(text="streamed after the wait")

    events = await drain(resilient([upstream.provider], FAST).stream(ask()))

    assert text_of(events) == "streamed after the wait"
    assert len(upstream.fake.chat_requests()) == 2
    model = upstream.provider.default_model
    assert attempted(events) == [(upstream.name, model), (upstream.name, model)]


async def test_server_errors_exhaust_retries_into_a_502(upstream: Upstream):
    for _ in range(3):
        upstream.fake.enqueue(status=500, error_message="boom")

    with pytest.raises(ProviderUpstreamError) as caught:
        await resilient([upstream.provider], FAST).complete(ask())

    error = caught.value
    assert (error.status, error.upstream_status, error.provider) == (502, 500, upstream.name)
    assert error.to_dict()["details"]["upstream_status"] == 500
    assert "boom" in error.message
    assert len(upstream.fake.chat_requests()) == 3


@pytest.mark.parametrize("name", PROVIDER_NAMES)
async def test_slow_upstream_raises_a_504_timeout(make_upstream, name: str):
    upstream = make_upstream(name, read_timeout=0.2)
    upstream.fake.enqueue(delay=1.0)

    with pytest.raises(ProviderTimeoutError) as caught:
        await upstream.provider.complete(ask())

    assert caught.value.status == 504
    assert caught.value.retryable


@pytest.mark.parametrize("name", PROVIDER_NAMES)
async def test_slow_stream_raises_a_timeout_then_a_retry_succeeds(make_upstream, name: str):
    upstream = make_upstream(name, read_timeout=0.2)
    upstream.fake.enqueue(delay=1.0)

    events = await drain(resilient([upstream.provider], FAST).stream(ask("hi")))

    assert text_of(events) == "echo: hi"
    assert [type(e) for e in failures(events)] == [ProviderTimeoutError]


async def test_invalid_request_is_a_400_and_is_not_retried(upstream: Upstream):
    upstream.fake.enqueue(status=400, error_message="messages: too many tokens")

    with pytest.raises(ProviderBadRequestError) as caught:
        await resilient([upstream.provider], FAST).complete(ask())

    assert (caught.value.status, caught.value.upstream_status) == (400, 400)
    assert "too many tokens" in caught.value.message
    assert len(upstream.fake.chat_requests()) == 1


async def test_invalid_request_on_a_stream_is_a_400(upstream: Upstream):
    upstream.fake.enqueue(status=400, error_message="bad tool schema")

    with pytest.raises(ProviderBadRequestError):
        await events_of(upstream)


async def test_unknown_model_is_a_400_model_not_found(upstream: Upstream):
    upstream.fake.enqueue(status=404, error_message="model 'nope' not found")

    with pytest.raises(ModelNotFoundError) as caught:
        await upstream.provider.complete(ask())

    assert (caught.value.status, caught.value.upstream_status) == (400, 404)


async def test_rejected_credentials_are_a_502_auth_error(upstream: Upstream):
    upstream.fake.enqueue(status=401, error_message="invalid x-api-key")

    with pytest.raises(ProviderAuthError) as caught:
        await resilient([upstream.provider], FAST).complete(ask())

    assert (caught.value.status, caught.value.upstream_status) == (502, 401)
    assert len(upstream.fake.chat_requests()) == 1


async def test_connection_dropped_mid_stream_raises_interrupted(upstream: Upstream):
    upstream.fake.enqueue(text="This answer never ends", chunks=5, cut_after_chunks=2)

    received: list = []
    with pytest.raises(ProviderStreamInterruptedError) as caught:
        async for event in upstream.provider.stream(ask()):
            received.append(event)

    assert len([e for e in received if isinstance(e, TextDelta)]) == 2
    assert not any(isinstance(e, Finished) for e in received)
    assert caught.value.status == 502


async def test_stream_ending_cleanly_without_final_event_raises_interrupted(upstream: Upstream):
    upstream.fake.enqueue(text="Looks complete but is not", end_without_finish=True)

    with pytest.raises(ProviderStreamInterruptedError):
        await events_of(upstream)


async def test_error_event_inside_a_stream_raises_an_upstream_error(upstream: Upstream):
    upstream.fake.enqueue(text="Starts fine then fails", chunks=4, error_after_chunks=2)

    received: list = []
    with pytest.raises(ProviderUpstreamError) as caught:
        async for event in upstream.provider.stream(ask()):
            received.append(event)

    assert len([e for e in received if isinstance(e, TextDelta)]) == 2
    assert caught.value.status == 502 and caught.value.retryable


async def test_error_event_before_any_text_is_retried(upstream: Upstream):
    upstream.fake.enqueue(text="never shown", error_after_chunks=0, error_message="Overloaded")
    upstream.fake.enqueue(text="second attempt")

    events = await drain(resilient([upstream.provider], FAST).stream(ask()))

    assert text_of(events) == "second attempt"
    assert "Overloaded" in failures(events)[0].message


async def test_interrupted_stream_is_not_retried_once_text_was_delivered(upstream: Upstream):
    upstream.fake.enqueue(text="Partial answer here", chunks=3, cut_after_chunks=1)

    with pytest.raises(ProviderStreamInterruptedError):
        await drain(resilient([upstream.provider], FAST).stream(ask()))

    assert len(upstream.fake.chat_requests()) == 1


async def test_generation_params_reach_the_vendor(upstream: Upstream):
    params = GenerationParams(temperature=0.2, max_tokens=50, stop=("END",))
    request = ChatRequest(model="", messages=(Message("user", "hi"),), params=params)

    await upstream.provider.complete(request)

    body = upstream.fake.chat_requests()[-1].body
    kind = upstream.provider.config.kind
    knobs = body["options"] if kind == "ollama" else body  # Ollama nests them
    assert knobs["temperature"] == 0.2
    assert knobs[STOP_FIELD.get(kind, "stop")] == ["END"]
    assert knobs[LIMIT_FIELD[kind]] == 50


async def test_the_default_model_is_used_when_the_request_names_none(upstream: Upstream):
    await upstream.provider.complete(ask())

    assert upstream.fake.chat_requests()[-1].body["model"] == upstream.provider.default_model


async def test_list_models_reads_the_vendor_catalogue(upstream: Upstream):
    upstream.fake.models = ["model-a", "model-b"]

    assert await upstream.provider.list_models() == ["model-a", "model-b"]


async def test_unreachable_upstream_is_a_retryable_502(upstream: Upstream):
    upstream.fake.stop()  # nothing listens on the port any more

    with pytest.raises(ProviderUpstreamError) as caught:
        await resilient([upstream.provider], RetryPolicy(max_retries=1, base_delay=0.01)).complete(
            ask()
        )

    assert caught.value.retryable and caught.value.upstream_status is None
