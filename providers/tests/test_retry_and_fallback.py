"""Retries, backoff and fallback across providers, against the fake vendors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from providers.core.base import Provider, ProviderConfig
from providers.core.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderRateLimitError,
    ProviderStreamInterruptedError,
    ProviderUpstreamError,
)
from providers.core.retry import Retrying, RetryPolicy, resilient
from providers.core.types import (
    AttemptStarted,
    ChatRequest,
    Finished,
    StreamEvent,
    TextDelta,
    collect,
)
from providers.core.wrapper import WithModel
from providers.tests.conftest import FAST, ask, attempted, drain, failures, text_of


@pytest.fixture
def pair(make_upstream):
    """A failing-prone primary (OpenAI) and a fallback (Anthropic)."""
    return make_upstream("openai"), make_upstream("anthropic")


async def test_completion_falls_back_when_the_primary_keeps_failing(pair):
    primary, fallback = pair
    for _ in range(3):
        primary.fake.enqueue(status=503)
    fallback.fake.enqueue(text="from the fallback")

    result = await resilient([primary.provider, fallback.provider], FAST).complete(ask())

    assert (result.text, result.provider) == ("from the fallback", "anthropic")
    assert len(primary.fake.chat_requests()) == 3
    assert len(fallback.fake.chat_requests()) == 1


async def test_stream_falls_back_and_reports_who_answered(pair):
    primary, fallback = pair
    primary.fake.enqueue(status=401)  # not retried, but another provider may work
    chain = [primary.provider, WithModel(fallback.provider, "claude-sonnet-5")]

    events = await drain(resilient(chain, FAST).stream(ask()))

    assert text_of(events).startswith("echo:")
    assert attempted(events) == [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-5")]
    assert [type(e) for e in failures(events)] == [ProviderAuthError]
    assert len(primary.fake.chat_requests()) == 1
    assert fallback.fake.chat_requests()[0].body["model"] == "claude-sonnet-5"


async def test_a_collected_result_names_the_provider_that_answered(pair):
    primary, fallback = pair
    primary.fake.enqueue(status=401)
    chain = [primary.provider, WithModel(fallback.provider, "claude-sonnet-5")]

    result = await collect(resilient(chain, FAST).stream(ask()), provider="?", model="?")

    assert (result.provider, result.model) == ("anthropic", "claude-sonnet-5")


async def test_no_fallback_once_text_was_delivered(pair):
    primary, fallback = pair
    primary.fake.enqueue(text="half an answer", chunks=4, cut_after_chunks=2)

    stream = resilient([primary.provider, fallback.provider], FAST).stream(ask())
    delivered: list[StreamEvent] = []
    with pytest.raises(ProviderStreamInterruptedError):
        async for event in stream:
            delivered.append(event)

    assert [type(e) for e in delivered if not isinstance(e, AttemptStarted)] == [TextDelta] * 2
    assert attempted(delivered) == [("openai", "gpt-4o-mini")]
    assert fallback.fake.chat_requests() == []


async def test_cut_before_any_text_is_retried_transparently(pair):
    primary, _ = pair
    primary.fake.enqueue(text="lost", cut_after_chunks=0)
    primary.fake.enqueue(text="second try")

    events = await drain(resilient([primary.provider], FAST).stream(ask()))

    assert text_of(events) == "second try"
    assert len(primary.fake.chat_requests()) == 2


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_cut_while_tool_arguments_arrive_is_retried(make_upstream, name):
    upstream = make_upstream(name)
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    upstream.fake.enqueue(tool_calls=[call], cut_after_chunks=2)
    upstream.fake.enqueue(tool_calls=[call])

    result = await collect(
        resilient([upstream.provider], FAST).stream(ask()), provider="p", model="m"
    )

    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert len(upstream.fake.chat_requests()) == 2


async def test_no_fallback_for_a_request_the_vendor_rejects(pair):
    primary, fallback = pair
    primary.fake.enqueue(status=400, error_message="bad schema")

    with pytest.raises(ProviderBadRequestError):
        await resilient([primary.provider, fallback.provider], FAST).complete(ask())

    assert fallback.fake.chat_requests() == []


async def test_the_last_error_is_raised_when_every_provider_fails(pair):
    primary, fallback = pair
    primary.fake.enqueue(status=401)
    for _ in range(3):
        fallback.fake.enqueue(status=429, retry_after=0)

    events: list[StreamEvent] = []
    with pytest.raises(ProviderRateLimitError) as caught:
        async for event in resilient([primary.provider, fallback.provider], FAST).stream(ask()):
            events.append(event)

    assert caught.value.provider == "anthropic" and caught.value.status == 429
    assert [type(e) for e in failures(events)] == [ProviderAuthError] + [ProviderRateLimitError] * 2
    assert len(attempted(events)) == 4


async def test_retry_after_from_the_vendor_sets_the_wait(make_upstream):
    upstream = make_upstream("openai")
    upstream.fake.enqueue(status=429, retry_after=0.3)

    started = time.monotonic()
    await Retrying(upstream.provider, RetryPolicy(base_delay=0.01)).complete(ask())

    assert time.monotonic() - started >= 0.3


async def test_retry_after_is_capped_at_max_delay(make_upstream):
    upstream = make_upstream("local")
    upstream.fake.enqueue(status=503, retry_after=60)

    started = time.monotonic()
    await Retrying(upstream.provider, FAST).complete(ask())

    assert time.monotonic() - started < 2


async def test_zero_retries_fails_after_one_attempt(make_upstream):
    upstream = make_upstream("openai")
    upstream.fake.enqueue(status=500)

    with pytest.raises(ProviderUpstreamError):
        await Retrying(upstream.provider, RetryPolicy(max_retries=0)).complete(ask())

    assert len(upstream.fake.chat_requests()) == 1


def test_backoff_is_exponential_with_full_jitter_and_capped():
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    error = ProviderUpstreamError("x", provider="p", retryable=True)

    delays = [[policy.delay(attempt, error) for _ in range(200)] for attempt in range(4)]

    assert all(0 <= d <= 0.5 for d in delays[0])
    assert all(0 <= d <= 1.0 for d in delays[1])
    assert all(0 <= d <= 3.0 for d in delays[3])
    assert max(delays[3]) > 1.0  # grows with the attempt number
    assert len(set(delays[0])) > 100  # jittered


async def test_closing_the_stream_early_stops_cleanly(make_upstream):
    upstream = make_upstream("anthropic")
    upstream.fake.enqueue(text="a long answer in many pieces", chunks=6)

    stream = resilient([upstream.provider], FAST).stream(ask())
    attempt, first = await anext(stream), await anext(stream)
    await stream.aclose()

    assert isinstance(attempt, AttemptStarted) and isinstance(first, TextDelta)
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


class _SilentProvider(Provider):
    """A third-party adapter that forgets to finish its stream."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        yield TextDelta("no end in sight")


class _FinishingProvider(Provider):
    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        yield TextDelta("done")
        yield Finished("stop")


async def test_a_stream_without_finish_is_reported_as_interrupted():
    silent = _SilentProvider(ProviderConfig(name="silent", kind="custom"))
    backup = _FinishingProvider(ProviderConfig(name="backup", kind="custom"))

    with pytest.raises(ProviderStreamInterruptedError):
        await drain(resilient([silent, backup], FAST).stream(ask()))
