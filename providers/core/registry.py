"""Which providers exist, how they are configured, and the instances that serve them.

The providers and their settings come from the vendors' descriptors
(`providers.core.descriptors`); a kind without a descriptor (a test double, a plugin's own
adapter) is one adapter class plus one `ProviderRegistry.register(kind, factory)` call.
Instances are built lazily on first use and cached, so SDK connection
pools are reused across requests. The cache is kept per event loop: pooled async
connections belong to the loop that opened them (relevant under `async_to_sync` and in
tests, which run several loops in one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping

from providers.core.base import Provider, ProviderConfig, ProviderDescriptor, ProviderKind
from providers.core.descriptors import all_descriptors
from providers.core.errors import ProviderNotConfiguredError, UnknownProviderError

__all__ = [
    "DEFAULT_PROVIDER_NAMES",
    "TIMEOUT_SETTINGS",
    "ProviderConfig",
    "ProviderKind",
    "ProviderRegistry",
    "build_registry",
    "configs_from_env",
    "parse_model",
]

ProviderFactory = Callable[[ProviderConfig], Provider]

# The vendors shipped with the project, as registered when this module was imported.
DEFAULT_PROVIDER_NAMES = tuple(d.name for d in all_descriptors())

# Shared by every provider (seconds): connect, one socket read, the wait between whole
# stream events (0 = none).
TIMEOUT_SETTINGS = ("PROVIDER_CONNECT_TIMEOUT", "PROVIDER_READ_TIMEOUT", "PROVIDER_IDLE_TIMEOUT")


class ProviderRegistry:
    _factories: dict[str, ProviderFactory] = {}

    @classmethod
    def register(cls, kind: str, factory: ProviderFactory) -> None:
        """Make a provider kind available to every registry (e.g. a new vendor)."""
        cls._factories[kind] = factory

    def __init__(
        self, configs: Iterable[ProviderConfig] = (), *, pool: ProviderRegistry | None = None
    ) -> None:
        """`pool`: another registry whose instances this one shares (a tenant's view of
        the process's providers); instances are kept by `ProviderConfig.cache_key`."""
        self._configs: dict[str, ProviderConfig] = {c.name: c for c in configs}
        if pool is not None:
            self._instances, self._no_loop, self._lock = pool._instances, pool._no_loop, pool._lock
            return
        self._instances: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, Provider]
        ] = weakref.WeakKeyDictionary()
        self._no_loop: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def configs(self) -> list[ProviderConfig]:
        return list(self._configs.values())

    def names(self) -> list[str]:
        return list(self._configs)

    def config(self, name: str) -> ProviderConfig:
        try:
            return self._configs[name]
        except KeyError:
            raise UnknownProviderError(name, tuple(self._configs)) from None

    def is_configured(self, name: str) -> bool:
        return name in self._configs and _missing_setting(self._configs[name]) is None

    def get(self, name: str) -> Provider:
        """The provider instance for `name`, built on first use."""
        config = self.config(name)
        missing = _missing_setting(config)
        if missing is not None:
            raise ProviderNotConfiguredError(name, missing)
        cache = self._cache()
        key = config.cache_key or name
        provider = cache.get(key)
        if provider is None:
            with self._lock:
                provider = cache.get(key)
                if provider is None:
                    factory = self._factory(config.kind)
                    provider = cache[key] = factory(config)
        return provider

    async def aclose(self) -> None:
        """Close the instances of the current loop (and those built outside any loop)."""
        with self._lock:
            current = self._cache()
            providers = list(current.values())
            current.clear()
            if current is not self._no_loop:
                providers += self._no_loop.values()
                self._no_loop.clear()
        for provider in providers:
            # Closing must not fail shutdown: a stale pool is just dropped.
            with contextlib.suppress(Exception):
                await provider.aclose()

    def _cache(self) -> dict[str, Provider]:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._no_loop
        cache = self._instances.get(loop)
        if cache is None:
            cache = self._instances[loop] = {}
        return cache

    def _factory(self, kind: str) -> ProviderFactory:
        if kind not in self._factories:
            _register_builtin_kinds()
        try:
            return self._factories[kind]
        except KeyError:
            raise ValueError(f"No provider implementation registered for kind {kind!r}") from None


def _missing_setting(config: ProviderConfig) -> str | None:
    """The variable to set, or None when the provider can be used."""
    if config.key_required and not config.api_key:
        return config.env_hint or f"{config.name.upper()}_API_KEY"
    if not config.base_url:
        return config.env_hint or f"{config.name.upper()}_BASE_URL"
    return None


def _register_builtin_kinds() -> None:
    for described in all_descriptors():
        ProviderRegistry._factories.setdefault(described.kind, described.adapter)
    # A kind only stored connections use (no provider is configured from settings).
    from providers.core.vendors.azure import AzureOpenAIProvider

    ProviderRegistry._factories.setdefault("azure_openai", AzureOpenAIProvider)


def build_registry(configs: list[ProviderConfig]) -> ProviderRegistry:
    _register_builtin_kinds()
    return ProviderRegistry(configs)


def configs_from_env(env: Mapping[str, str]) -> list[ProviderConfig]:
    """One configuration per registered vendor, from environment-style settings.

    Each vendor reads the settings its descriptor lists (OPENAI_API_KEY, OPENAI_BASE_URL,
    OPENAI_DEFAULT_MODEL, ANTHROPIC_MAX_TOKENS, LOCAL_LLM_ENDPOINT, PRIVATE_CLOUD_ENDPOINT...);
    all read TIMEOUT_SETTINGS. Empty values count as unset.
    """

    def get(name: str, default: str | None = None) -> str | None:
        return env.get(name) or default

    timeouts = {
        "connect_timeout": float(get("PROVIDER_CONNECT_TIMEOUT", "5") or 5),
        "read_timeout": float(get("PROVIDER_READ_TIMEOUT", "120") or 120),
        "idle_timeout": float(get("PROVIDER_IDLE_TIMEOUT", "60") or "60"),
    }
    return [_config(described, env, timeouts) for described in all_descriptors()]


def _config(
    described: ProviderDescriptor, env: Mapping[str, str], timeouts: dict[str, float]
) -> ProviderConfig:
    fields: dict[str, object] = {}
    for setting in described.settings:
        value = env.get(setting.name) or setting.default
        if value:
            fields[setting.field] = setting.parse(value)
    # Name the variable that is missing; when nothing is, the one that matters most.
    key = described.setting("api_key") if described.key_required else None
    needed = [s for s in (key, described.setting("base_url")) if s is not None]
    missing = [s.name for s in needed if not fields.get(s.field)]
    return ProviderConfig(
        name=described.name,
        kind=described.kind,
        env_hint=(missing or [s.name for s in needed] or [""])[0],
        key_required=described.key_required,
        **fields,  # type: ignore[arg-type]
        **timeouts,  # type: ignore[arg-type]
    )


def parse_model(
    model: str | None, provider: str | None, *, known: set[str]
) -> tuple[str | None, str | None]:
    """Split "provider/model" into (provider, model) when the prefix names a provider.

    Only a known provider name is split off, so model names that contain a slash
    ("meta-llama/Llama-3" on a private cloud) survive. An explicit provider wins: with
    provider="private", "openai/gpt-4o" is a model name of that cloud, unless the prefix
    repeats the provider itself ("private/x" -> "x").
    """
    model = model or None
    provider = provider or None
    if model is None or "/" not in model:
        return provider, model
    prefix, rest = model.split("/", 1)
    if prefix not in known or not rest:
        return provider, model
    if provider is None or provider == prefix:
        return prefix, rest
    return provider, model
