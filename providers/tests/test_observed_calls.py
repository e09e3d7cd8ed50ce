"""One model call, retries and fallbacks included, seen by telemetry as one call named
after the provider that answered; run through the tool loop against the fake vendors."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from llmwrapper.observability import metrics, tracing
from llmwrapper.observability.genai import observe_provider_call
from providers.core.errors import ProviderAuthError
from providers.core.loop import RoundCompleted, TurnOptions, run_turn
from providers.core.types import TextDelta
from providers.core.wrapper import WithModel
from providers.tests.conftest import FAST, ask

OBSERVED = TurnOptions(policy=FAST, observe=observe_provider_call)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(processor=SimpleSpanProcessor(exporter), set_global=False)
    yield exporter
    tracing.shutdown_tracing()


@pytest.fixture
def chain(make_upstream):
    primary, fallback = make_upstream("openai"), make_upstream("anthropic")
    providers = [
        WithModel(primary.provider, ""),
        WithModel(fallback.provider, "claude-sonnet-5"),
    ]
    return primary, fallback, providers


def calls(provider: str, model: str, status: str) -> float:
    labels = {"provider": provider, "model": metrics.model_label(model), "status": status}
    return REGISTRY.get_sample_value("llmwrapper_provider_calls_total", labels) or 0.0


async def test_a_fallback_answer_is_one_span_named_after_the_provider_that_answered(spans, chain):
    primary, fallback, providers = chain
    primary.fake.enqueue(status=401)
    fallback.fake.enqueue(text="from the fallback")

    events = [e async for e in run_turn(ask(), chain_for=lambda _: providers, options=OBSERVED)]

    [round_] = [e for e in events if isinstance(e, RoundCompleted)]
    assert (round_.provider, round_.model, round_.text) == (
        "anthropic",
        "claude-sonnet-5",
        "from the fallback",
    )
    [span] = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert span.name == "chat claude-sonnet-5"
    assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert span.attributes["gen_ai.provider.name"] == "anthropic"
    assert span.attributes["llmwrapper.provider"] == "anthropic"
    assert span.attributes["gen_ai.response.model"] == "claude-sonnet-5"
    assert span.attributes["llmwrapper.attempts"] == 2
    [failed] = [e for e in span.events if e.name == "gen_ai.attempt.failed"]
    assert failed.attributes["llmwrapper.provider"] == "openai"
    assert failed.attributes["error.type"] == ProviderAuthError.type


async def test_a_call_closed_mid_answer_is_counted_for_the_provider_answering(chain):
    primary, fallback, providers = chain
    primary.fake.enqueue(status=401)
    fallback.fake.enqueue(text="a long answer in many pieces", chunks=6)
    before = calls("anthropic", "claude-sonnet-5", "cancelled")

    turn = run_turn(ask(), chain_for=lambda _: providers, options=OBSERVED)
    assert isinstance(await anext(turn), TextDelta)
    await turn.aclose()

    assert calls("anthropic", "claude-sonnet-5", "cancelled") == before + 1
