"""Provider configuration, lookup and "provider/model" parsing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from providers.core.base import Provider, ProviderConfig
from providers.core.errors import ProviderNotConfiguredError, UnknownProviderError
from providers.core.registry import (
    DEFAULT_PROVIDER_NAMES,
    ProviderRegistry,
    build_registry,
    configs_from_env,
    parse_model,
)
from providers.core.types import ChatRequest, Finished, Message, StreamEvent, TextDelta
from providers.testing import FakeOpenAI

KNOWN = set(DEFAULT_PROVIDER_NAMES)


@pytest.mark.parametrize(
    ("model", "provider", "expected"),
    [
        ("gpt-4o", None, (None, "gpt-4o")),
        ("openai/gpt-4o", None, ("openai", "gpt-4o")),
        ("anthropic/claude-haiku-4-5", None, ("anthropic", "claude-haiku-4-5")),
        ("local/llama3.2:latest", None, ("local", "llama3.2:latest")),
        ("meta-llama/Llama-3-8B", None, (None, "meta-llama/Llama-3-8B")),
        ("meta-llama/Llama-3-8B", "private", ("private", "meta-llama/Llama-3-8B")),
        ("private/meta-llama/Llama-3-8B", None, ("private", "meta-llama/Llama-3-8B")),
        ("private/meta-llama/Llama-3-8B", "private", ("private", "meta-llama/Llama-3-8B")),
        ("openai/gpt-4o", "private", ("private", "openai/gpt-4o")),  # a model of that cloud
        ("openai/", None, (None, "openai/")),
        (None, "anthropic", ("anthropic", None)),
        ("", "", (None, None)),
    ],
)
def test_parse_model_splits_only_known_provider_prefixes(model, provider, expected):
    assert parse_model(model, provider, known=KNOWN) == expected


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("private", "PRIVATE_CLOUD_ENDPOINT"),
    ],
)
def test_unconfigured_provider_names_the_variable_to_set(name: str, variable: str):
    registry = build_registry(configs_from_env({}))  # building never fails

    with pytest.raises(ProviderNotConfiguredError) as caught:
        registry.get(name)

    assert caught.value.status == 400
    assert caught.value.message == f"Provider '{name}' is not configured: set {variable}"
    assert caught.value.to_dict()["type"] == "provider_not_configured"
    assert not registry.is_configured(name)


def test_local_models_need_no_key_and_default_to_localhost():
    registry = build_registry(configs_from_env({}))

    provider = registry.get("local")

    assert provider.name == "local"
    assert registry.config("local").base_url == "http://localhost:11434"


def test_environment_sets_keys_endpoints_models_and_timeouts():
    env = {
        "OPENAI_API_KEY": "sk-secret-value",
        "OPENAI_BASE_URL": "http://proxy/v1",
        "ANTHROPIC_DEFAULT_MODEL": "claude-sonnet-5",
        "PRIVATE_CLOUD_ENDPOINT": "http://vllm:8000/v1",
        "PROVIDER_READ_TIMEOUT": "30",
    }
    configs = {c.name: c for c in configs_from_env(env)}

    assert list(configs) == list(DEFAULT_PROVIDER_NAMES)
    assert configs["openai"].base_url == "http://proxy/v1"
    assert configs["anthropic"].default_model == "claude-sonnet-5"
    assert configs["private"].kind == "openai_compatible"
    assert configs["openai"].read_timeout == 30.0
    assert "sk-secret-value" not in repr(configs["openai"])


def test_unknown_provider_is_a_400_listing_the_available_ones():
    registry = build_registry(configs_from_env({}))

    with pytest.raises(UnknownProviderError) as caught:
        registry.get("mistral")

    assert caught.value.status == 400
    assert ", ".join(sorted(DEFAULT_PROVIDER_NAMES)) in caught.value.message


async def test_instances_are_built_once_and_reused():
    registry = build_registry(configs_from_env({"OPENAI_API_KEY": "k"}))

    assert registry.get("openai") is registry.get("openai")
    await registry.aclose()


def test_one_registry_serves_successive_event_loops():
    # Pooled connections belong to a loop: async_to_sync and tests run several loops.
    with FakeOpenAI() as fake:
        config = ProviderConfig("openai", "openai", "k", fake.base_url, "gpt-4o-mini")
        registry = build_registry([config])

        async def ask_once() -> str:
            try:
                request = ChatRequest("", (Message("user", "x"),))
                return (await registry.get("openai").complete(request)).text
            finally:
                await registry.aclose()  # this loop's pool; the next run builds its own

        assert [asyncio.run(ask_once()) for _ in range(2)] == ["echo: x", "echo: x"]


class EchoProvider(Provider):
    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        yield TextDelta(request.messages[-1].content)
        yield Finished("stop")


async def test_a_new_provider_kind_is_one_class_and_one_registration():
    ProviderRegistry.register("echo", EchoProvider)
    try:
        registry = build_registry([ProviderConfig("mine", "echo", None, "x", "echo-1")])
        result = await registry.get("mine").complete(ChatRequest("", (Message("user", "hey"),)))
    finally:
        ProviderRegistry._factories.pop("echo")

    assert (result.text, result.provider, result.model) == ("hey", "mine", "echo-1")
