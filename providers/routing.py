"""A route's deployments in the order a call tries them.

The best priority (the lowest number) that has a deployment not cooling down serves;
among its deployments the first is drawn by weight, then the rest of that priority by
weight, then the lower priorities in turn: the fallbacks. A deployment that fails
before any output (429, 5xx, timeout, dropped connection) rests for the route's
`cooldown_seconds`, shared by every process (connections.cooldowns), and the call moves
on at once. When every deployment rests, the call is a 503 with Retry-After.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from connections import cooldowns
from providers.core.base import Provider
from providers.core.errors import ProviderError, RouteUnavailableError
from providers.core.registry import ProviderRegistry
from providers.core.retry import CoolingDown


def check_available(route: Any) -> None:
    """Raise RouteUnavailableError when every deployment of the route rests."""
    resting = cooldowns.cooling(route.key, len(route.deployments))
    if route.deployments and len(resting) == len(route.deployments):
        raise RouteUnavailableError(route.name, retry_after=min(resting.values()) - time.time())


def deployments(
    route: Any,
    reg: ProviderRegistry,
    member: Callable[[str, str], Provider],
    *,
    primary: bool,
) -> list[Provider]:
    """The route's members of a provider chain (see the module docstring), each built
    by `member(connection, model)`; a fallback route with nothing available contributes
    nothing."""
    resting = cooldowns.cooling(route.key, len(route.deployments))
    ready = [
        (i, d)
        for i, d in enumerate(route.deployments)
        if i not in resting and reg.is_configured(d.connection)
    ]
    if not ready:
        if primary and resting:
            raise RouteUnavailableError(route.name, retry_after=min(resting.values()) - time.time())
        if primary:  # no deployment is configured: name the first one's missing setting
            reg.get(route.deployments[0].connection)
        return []
    members: list[Provider] = []
    for priority in sorted({d.priority for _, d in ready}):
        for i, deployment in _by_weight([(i, d) for i, d in ready if d.priority == priority]):
            provider = member(deployment.connection, deployment.model)
            members.append(CoolingDown(provider, _cooler(route, i)))
    return members


def _by_weight(items: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """`items` in a random order where heavier deployments tend to come first."""
    left, ordered = list(items), []
    while left:
        weights = [max(d.weight, 0.0) for _, d in left]
        pick = random.choices(range(len(left)), weights=weights)[0] if sum(weights) else 0  # noqa: S311
        ordered.append(left.pop(pick))
    return ordered


def _cooler(route: Any, index: int):  # type: ignore[no-untyped-def]
    def cool(error: ProviderError) -> None:
        cooldowns.cool(route.key, index, route.cooldown_seconds)

    return cool
