"""Deployments of a route resting after a failure, shared by every process through the
cache (Redis when REDIS_URL is set; the process's memory otherwise)."""

from __future__ import annotations

import math
import time

from django.core.cache import cache

_PREFIX = "route-cooldown"


def _key(route_key: str, index: int) -> str:
    return f"{_PREFIX}:{route_key}:{index}"


def cooling(route_key: str, count: int) -> dict[int, float]:
    """The deployments (by index) that rest now, with the time they rest until."""
    keys = [_key(route_key, i) for i in range(count)]
    found = cache.get_many(keys)
    now = time.time()
    return {i: until for i, key in enumerate(keys) if (until := found.get(key)) and until > now}


def cool(route_key: str, index: int, seconds: float) -> None:
    if seconds > 0:
        cache.set(_key(route_key, index), time.time() + seconds, timeout=math.ceil(seconds))
