"""The Django side of the provider core: the registry built from settings, model
selection, fallback chains and turn options.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from llmwrapper.observability.genai import observe_provider_call
from providers.core.base import Capabilities
from providers.core.content import ContentLimits
from providers.core.descriptors import all_descriptors, descriptor, setting_names
from providers.core.errors import UnknownProviderError
from providers.core.loop import TurnOptions
from providers.core.registry import (
    TIMEOUT_SETTINGS,
    ProviderRegistry,
    build_registry,
    configs_from_env,
    parse_model,
)
from providers.core.retry import ProviderChain, RetryPolicy
from providers.core.types import ChatRequest
from providers.core.wrapper import WithModel


def _setting_names() -> tuple[str, ...]:
    """The settings the registry is built from: every vendor's, then the shared ones."""
    return (*setting_names(), *TIMEOUT_SETTINGS)


_registry: ProviderRegistry | None = None


def registry() -> ProviderRegistry:
    """The process's registry: built once, so SDK clients and their pools are reused."""
    global _registry
    if _registry is None:
        values = {name: _text(getattr(settings, name, "")) for name in _setting_names()}
        _registry = build_registry(configs_from_env(values))
    return _registry


def _text(value: object) -> str:
    # Unset is empty; a zero (e.g. a limit turned off) stays "0".
    return "" if value is None or value == "" else str(value)


@receiver(setting_changed)
def _reset_registry(*, setting: str, **kwargs: Any) -> None:
    if setting in _setting_names():
        registry_reset()


def registry_reset() -> None:
    """Forget the registry (settings or the registered vendors changed); the next call
    builds a new one."""
    global _registry
    _registry = None


@dataclass(frozen=True, slots=True)
class Target:
    provider: str  # a connection (or built-in provider) name, or a route's
    model: str  # "" = the provider's default model
    route: Any = None  # connections.catalog.RouteSpec when the model named a route

    def label(self) -> str:
        return f"{self.provider}/{self.model}" if self.model else self.provider


@dataclass(frozen=True)
class View:
    """What one subtenant can call: the process's providers configured from settings,
    overlaid by the stored connections it sees (global ones, then its own), and the
    stored routes."""

    registry: ProviderRegistry
    routes: Mapping[str, Any] = field(default_factory=dict)  # name -> RouteSpec
    models: Mapping[str, list[str]] = field(default_factory=dict)  # a connection's own list


_views: dict[Any, tuple[object, object, View]] = {}


async def view_for(subtenant: Any) -> View:
    """The view of `subtenant` (None: the global one), from memory when fresh."""
    from connections import catalog
    from llmwrapper import db

    key = getattr(subtenant, "pk", None)
    scope = catalog.cached(key) or await db.run(catalog.load, key)
    return _view(key, scope)


def view_sync(subtenant: Any) -> View:
    """`view_for` for sync code (a sync unit may read the database)."""
    from connections import catalog

    key = getattr(subtenant, "pk", None)
    return _view(key, catalog.cached(key) or catalog.load(key))


def _view(key: Any, scope: Any) -> View:
    base = registry()
    entry = _views.get(key)
    if entry is not None and entry[0] is scope and entry[1] is base:
        return entry[2]
    if not scope.configs and not scope.routes:
        view = View(base)
    else:
        configs = {c.name: c for c in base.configs()} | scope.configs
        view = View(ProviderRegistry(configs.values(), pool=base), scope.routes, scope.models)
    _views[key] = (scope, base, view)
    return view


def known_providers(view: View | None = None) -> set[str]:
    return set((view.registry if view else registry()).names())


def resolve_target(
    levels: Sequence[tuple[str | None, str | None]], view: View | None = None
) -> Target:
    """Pick provider and model from (provider, model) pairs, most specific first.

    Typically: the request, the chat, the subtenant. The provider is the first one
    named (a model may name it as "provider/model"); the model is the first one given
    at that level or a more specific one, so a request naming only a provider does
    not inherit another provider's model from the chat. A model that is the name of a
    route the view has (and no provider) is that route. Otherwise DEFAULT_LLM_PROVIDER
    with its default model.
    """
    known = known_providers(view)
    routes = view.routes if view else {}
    models: list[str] = []
    for provider, model in levels:
        if provider is None and not models and model in routes:
            return Target(model, "", routes[model])
        provider, model = parse_model(model, provider, known=known)
        if model:
            models.append(model)
        if provider:
            _check_known(provider, known)
            return Target(provider, models[0] if models else "")
    default = settings.DEFAULT_LLM_PROVIDER
    _check_known(default, known)
    return Target(default, models[0] if models else "")


def _check_known(provider: str, known: set[str]) -> None:
    if provider not in known:
        raise UnknownProviderError(provider, tuple(sorted(known)))


def parse_targets(specs: Iterable[str], view: View | None = None) -> list[Target]:
    """Fallbacks given as "provider", "provider/model" or a route's name."""
    known = known_providers(view)
    routes = view.routes if view else {}
    targets = []
    for spec in specs:
        if spec in routes:
            targets.append(Target(spec, "", routes[spec]))
            continue
        provider, _, model = spec.partition("/")
        _check_known(provider, known)
        targets.append(Target(provider, model))
    return targets


def chain_factory(  # type: ignore[no-untyped-def]
    primary: Target,
    fallbacks: Sequence[Target] = (),
    view: View | None = None,
    vendor_fields: Mapping[str, dict] | None = None,
):
    """A `chain_for(request)` for the tool loop: primary first, then fallbacks, each
    asking for its target's model; a route stands for its deployments (see `routing`).

    Unconfigured providers raise for the primary (the caller asked for it) and are
    skipped among fallbacks. `vendor_fields` (by vendor kind) go to the members of
    that kind.
    """
    from providers import routing

    reg = view.registry if view else registry()
    targets = [primary, *(t for t in fallbacks if t != primary)]

    fields = vendor_fields or {}

    def member(name: str, model: str) -> WithModel:
        provider = reg.get(name)
        return WithModel(provider, model, fields.get(provider.config.kind))

    def chain_for(request: ChatRequest) -> ProviderChain:
        chain: ProviderChain = []
        for index, target in enumerate(targets):
            if target.route is not None:
                chain += routing.deployments(target.route, reg, member, primary=index == 0)
            elif index == 0 or reg.is_configured(target.provider):
                chain.append(member(target.provider, target.model))
        return chain

    return chain_for


def turn_options(*, streaming: bool = True) -> TurnOptions:
    return TurnOptions(
        streaming=streaming,
        max_rounds=settings.TOOL_MAX_ROUNDS,
        tool_timeout_s=settings.TOOL_TIMEOUT,
        max_result_chars=settings.TOOL_MAX_RESULT_CHARS,
        policy=RetryPolicy(
            max_retries=settings.PROVIDER_MAX_RETRIES,
            base_delay=settings.PROVIDER_RETRY_BASE_DELAY,
            max_delay=settings.PROVIDER_RETRY_MAX_DELAY,
            total_timeout=settings.PROVIDER_TOTAL_TIMEOUT,
        ),
        observe=observe_provider_call,
    )


def content_limits() -> ContentLimits:
    return ContentLimits(
        part_bytes=settings.CONTENT_PART_MAX_BYTES,
        message_bytes=settings.CONTENT_MESSAGE_MAX_BYTES,
        parts=settings.CONTENT_MAX_PARTS,
    )


def capabilities(provider: str, view: View | None = None) -> Capabilities | None:
    """What the provider's vendor accepts; None for a kind no descriptor describes. A
    route: what its first deployment's vendor accepts."""
    if view is not None and provider in view.routes:
        deployments = view.routes[provider].deployments
        if not deployments:
            return None
        provider = deployments[0].connection
    config = (view.registry if view else registry()).config(provider)
    if not config.cache_key:  # configured from settings: its own descriptor says
        described = descriptor(provider)
        if described is not None and described.kind == config.kind:
            return described.capabilities
    kind = "openai" if config.kind == "azure_openai" else config.kind
    return next((d.capabilities for d in all_descriptors() if d.kind == kind), None)
