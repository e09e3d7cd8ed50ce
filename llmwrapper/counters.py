"""Windowed counters for rate limits, atomic across processes.

With REDIS_URL set, one Lua script per check reads and increments a sliding-window
counter atomically, so N processes enforce one limit. Without Redis, an in-process
counter with a lock does the same for a single process.

The sliding window is the two-fixed-windows approximation: the previous window's
count, weighted by how much of it still overlaps the last `window` seconds, plus the
current window's count. With an empty previous window exactly `limit` units pass.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

_SCRIPT = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local index = math.floor(now / window)
local current_key = KEYS[1] .. ':' .. index
local previous_key = KEYS[1] .. ':' .. (index - 1)
local current = tonumber(redis.call('GET', current_key) or '0')
local previous = tonumber(redis.call('GET', previous_key) or '0')
local elapsed = now - index * window
local used = previous * (window - elapsed) / window + current
if limit > 0 and cost > 0 and used + cost > limit then
  return {0, tostring(used), tostring(window - elapsed)}
end
if cost > 0 then
  redis.call('INCRBY', current_key, cost)
  redis.call('PEXPIRE', current_key, window * 2)
end
return {1, tostring(used + cost), tostring(window - elapsed)}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    used: float
    reset_ms: float

    @property
    def remaining(self) -> int:
        return max(0, int(self.limit - self.used))

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.reset_ms / 1000))


class _LocalCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def hit(
        self, key: str, *, limit: int, window_ms: int, now_ms: int, cost: int
    ) -> tuple[bool, float, float]:
        index = now_ms // window_ms
        elapsed = now_ms - index * window_ms
        with self._lock:
            current = self._counts.get((key, index), 0)
            previous = self._counts.get((key, index - 1), 0)
            used = previous * (window_ms - elapsed) / window_ms + current
            if limit > 0 and cost > 0 and used + cost > limit:
                return False, used, window_ms - elapsed
            if cost > 0:
                self._counts[(key, index)] = current + cost
                if len(self._counts) > 100_000:
                    self._counts = {k: v for k, v in self._counts.items() if k[1] >= index - 1}
            return True, used + cost, window_ms - elapsed


_local = _LocalCounters()


@lru_cache(maxsize=4)
def _redis(url: str):  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    return client, client.register_script(_SCRIPT)


def hit(key: str, *, limit: int, cost: int = 1, window_s: float | None = None) -> Decision:
    """Count `cost` units against `limit` per window, unless that would exceed it.

    `cost=0` only reads. `limit=0` counts without limiting.
    """
    window_ms = int((window_s or settings.RATE_LIMIT_WINDOW_SECONDS) * 1000)
    now_ms = int(time.time() * 1000)
    full_key = f"{settings.CACHE_KEY_PREFIX}:rl:{key}"
    if settings.REDIS_URL:
        _, script = _redis(settings.REDIS_URL)
        allowed, used, reset = script(keys=[full_key], args=[limit, window_ms, now_ms, cost])
        return Decision(bool(int(allowed)), limit, float(used), float(reset))
    allowed, used, reset = _local.hit(
        full_key, limit=limit, window_ms=window_ms, now_ms=now_ms, cost=cost
    )
    return Decision(allowed, limit, used, reset)


def reset_local() -> None:
    """Forget in-process counts (tests)."""
    global _local
    _local = _LocalCounters()
