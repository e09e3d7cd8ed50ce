"""Each provider against its fake vendor server, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from providers.base import Provider
from providers.errors import ProviderError
from providers.registry import ProviderConfig, ProviderRegistry, build_registry
from providers.retry import RetryPolicy
from providers.testing import FakeAnthropic, FakeOllama, FakeOpenAI
from providers.testing.fakes import ChatFake
from providers.types import (
    AttemptFailed,
    AttemptStarted,
    ChatRequest,
    Message,
    StreamEvent,
    TextDelta,
    ToolSpec,
)

PROVIDER_NAMES = ("openai", "anthropic", "local", "private")
FAKES: dict[str, type[ChatFake]] = {
    "openai": FakeOpenAI,
    "anthropic": FakeAnthropic,
    "local": FakeOllama,
    "private": FakeOpenAI,
}
KINDS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "local": "ollama",
    "private": "openai_compatible",
}
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "local": "llama3.2",
    "private": "meta-llama/Llama-3.1-8B-Instruct",
}

# Tiny delays keep retry tests fast without changing what is being tested.
FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05)

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def config_for(name: str, fake: ChatFake, **overrides: object) -> ProviderConfig:
    values: dict = {
        "name": name,
        "kind": KINDS[name],
        "api_key": None if name in ("local", "private") else "test-key",
        "base_url": fake.base_url,
        "default_model": MODELS[name],
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "env_hint": f"{name.upper()}_KEY",
    }
    values.update(overrides)
    return ProviderConfig(**values)


def ask(text: str = "What is the weather in Paris?", **kwargs: object) -> ChatRequest:
    return ChatRequest(model="", messages=(Message("user", text),), **kwargs)


async def drain(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def attempted(events: list[StreamEvent]) -> list[tuple[str, str]]:
    """(provider, model) of each attempt, in order."""
    return [(e.provider, e.model) for e in events if isinstance(e, AttemptStarted)]


def failures(events: list[StreamEvent]) -> list[ProviderError]:
    return [e.error for e in events if isinstance(e, AttemptFailed)]


@dataclass
class Upstream:
    name: str
    fake: ChatFake
    provider: Provider
    registry: ProviderRegistry


@pytest.fixture(params=PROVIDER_NAMES)
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[Upstream]:
    name = request.param
    with FAKES[name]() as fake:
        registry = build_registry([config_for(name, fake)])
        yield Upstream(name, fake, registry.get(name), registry)
        await registry.aclose()


@pytest.fixture
async def make_upstream() -> AsyncIterator[Callable[..., Upstream]]:
    """Build an Upstream with config overrides (e.g. a short read timeout)."""
    created: list[tuple[ChatFake, ProviderRegistry]] = []

    def build(name: str, **overrides: object) -> Upstream:
        fake = FAKES[name]().start()
        registry = build_registry([config_for(name, fake, **overrides)])
        created.append((fake, registry))
        return Upstream(name, fake, registry.get(name), registry)

    yield build
    for fake, registry in created:
        await registry.aclose()
        fake.stop()
