"""What a subtenant sees of the stored connections and routes: global ones, shadowed by
its own of the same name. Kept in memory for CONNECTIONS_CACHE_SECONDS, and forgotten in
the process that changes one at once (other processes see a change within that time).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from connections import selectors
from connections.models import Connection, Route
from llmwrapper.secrets import unseal
from providers.core.base import ProviderConfig
from providers.core.descriptors import all_descriptors
from tools import netguard, runtime


@dataclass(frozen=True)
class Deployment:
    connection: str
    model: str
    weight: float = 1.0
    priority: int = 0


@dataclass(frozen=True)
class RouteSpec:
    name: str
    deployments: tuple[Deployment, ...]
    cooldown_seconds: float
    key: str  # identifies the route's cooldowns: its id


@dataclass(frozen=True)
class Scope:
    configs: dict[str, ProviderConfig] = field(default_factory=dict)
    models: dict[str, list[str]] = field(default_factory=dict)  # a connection's own list
    routes: dict[str, RouteSpec] = field(default_factory=dict)


_lock = threading.Lock()
_scopes: dict[UUID | None, tuple[float, Scope]] = {}


def cached(subtenant_id: UUID | None) -> Scope | None:
    """The scope if this process knows it (and it is fresh), without the database."""
    entry = _scopes.get(subtenant_id)
    if entry is None or entry[0] < time.monotonic():
        return None
    return entry[1]


def load(subtenant_id: UUID | None) -> Scope:
    """The scope read from the database (a sync unit), and remembered."""
    scope = Scope()
    # Global ones first, so a subtenant's own replaces the global one of its name.
    for connection in selectors.connection_list_visible(subtenant_id=subtenant_id):
        scope.configs[connection.name] = config_of(connection)
        scope.models[connection.name] = list(connection.model_list)
    for route in selectors.route_list_visible(subtenant_id=subtenant_id):
        scope.routes[route.name] = route_of(route)
    with _lock:
        _scopes[subtenant_id] = (time.monotonic() + settings.CONNECTIONS_CACHE_SECONDS, scope)
    return scope


def forget(**_: Any) -> None:
    """Drop every remembered scope (a connection or route changed in this process)."""
    with _lock:
        _scopes.clear()


for _model in (Connection, Route):
    post_save.connect(forget, sender=_model, dispatch_uid=f"catalog-save-{_model.__name__}")
    post_delete.connect(forget, sender=_model, dispatch_uid=f"catalog-delete-{_model.__name__}")


def _descriptor(kind: str) -> Any:
    return next((d for d in all_descriptors() if d.kind == kind), None)


def config_of(connection: Connection) -> ProviderConfig:
    """The provider configuration a stored connection stands for."""
    secrets = unseal(connection.secrets_sealed, {})
    described = _descriptor(connection.kind)
    defaults: dict[str, Any] = {}
    if described is not None:
        for setting in described.settings:
            if setting.field in ("base_url", "default_model") and setting.default:
                defaults[setting.field] = setting.default
    transport = None
    if connection.subtenant_id is not None:
        # A tenant named this endpoint: every connection goes through the outbound guard
        # (vetted, pinned addresses; no redirects), as its webhooks do.
        policy = runtime.outbound_policy(connection.base_url)
        transport = partial(netguard.GuardedTransport, policy)
    return ProviderConfig(
        name=connection.name,
        kind=connection.kind,
        api_key=secrets.get("api_key") or None,
        base_url=connection.base_url or defaults.get("base_url"),
        default_model=connection.default_model or defaults.get("default_model", ""),
        connect_timeout=float(settings.PROVIDER_CONNECT_TIMEOUT),
        read_timeout=float(connection.timeout or settings.PROVIDER_READ_TIMEOUT),
        idle_timeout=float(settings.PROVIDER_IDLE_TIMEOUT or 0) or None,
        env_hint=f"the api_key of connection '{connection.name}'",
        key_required=described.key_required if described else True,
        extra_headers=dict(secrets.get("headers") or {}),
        default_max_tokens=int(settings.ANTHROPIC_MAX_TOKENS or 1024),
        transport=transport,
        options={"api_version": connection.api_version} if connection.api_version else {},
        cache_key=f"connection:{connection.pk}:{connection.updated_at.timestamp()}",
    )


def route_of(route: Route) -> RouteSpec:
    return RouteSpec(
        name=route.name,
        deployments=tuple(
            Deployment(
                connection=d["connection"],
                model=d.get("model") or "",
                weight=float(d.get("weight", 1)),
                priority=int(d.get("priority", 0)),
            )
            for d in route.deployments
        ),
        cooldown_seconds=route.cooldown_seconds,
        key=str(route.pk),
    )
