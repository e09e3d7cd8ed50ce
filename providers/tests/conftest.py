"""Each provider against its fake vendor server, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from providers.core.base import Provider
from providers.core.descriptors import all_descriptors
from providers.core.errors import ProviderError
from providers.core.registry import ProviderConfig, ProviderRegistry, build_registry
from providers.core.retry import RetryPolicy
from providers.core.types import (
    AttemptFailed,
    AttemptStarted,
    ChatRequest,
    Message,
    StreamEvent,
    TextDelta,
    ToolSpec,
)
from providers.testing import fake_for
from providers.testing.fakes import ChatFake

DESCRIBED = {d.name: d for d in all_descriptors()}
PROVIDER_NAMES = tuple(DESCRIBED)
FAKES: dict[str, type[ChatFake]] = {name: fake_for(d) for name, d in DESCRIBED.items()}
KINDS = {name: d.kind for name, d in DESCRIBED.items()}
# The vendors' default models; a private cloud's model names often contain a slash.
MODELS = {name: d.default_model for name, d in DESCRIBED.items()} | {
    "private": "meta-llama/Llama-3.1-8B-Instruct"
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
        "api_key": "test-key" if DESCRIBED[name].key_required else None,
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
