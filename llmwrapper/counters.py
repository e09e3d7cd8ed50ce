"""Windowed counters for rate limits, atomic across processes.

With REDIS_URL set, one Lua script per check reads and increments a sliding-window
counter atomically, so N processes enforce one limit. Without Redis, an in-process
counter with a lock does the same for a single process.

When Redis cannot be reached, limits fail open to the in-process counter: no request
fails because of Redis, and each limit still holds per process (N processes then let
up to N times the limit through). Redis is tried again after `REDIS_RETRY_SECONDS`;
a warning is logged at most every `WARN_EVERY_SECONDS`, and every check counted in the
process meanwhile increments `llmwrapper_rate_limit_unavailable_total`.

The sliding window is the two-fixed-windows approximation: the previous window's
count, weighted by how much of it still overlaps the last `window` seconds, plus the
current window's count. With an empty previous window exactly `limit` units pass.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from llmwrapper.observability.metrics import RATE_LIMIT_UNAVAILABLE

logger = logging.getLogger(__name__)

REDIS_RETRY_SECONDS = 1.0
WARN_EVERY_SECONDS = 60.0

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


class _RedisState:
    """Whether Redis answered lately; a failure sets it aside for a short while."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._warned_at = -WARN_EVERY_SECONDS
        self._down = False

    def usable(self) -> bool:
        return time.monotonic() >= self._retry_at

    def failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._retry_at, self._down = now + REDIS_RETRY_SECONDS, True
            warn = now - self._warned_at >= WARN_EVERY_SECONDS
            if warn:
                self._warned_at = now
        if warn:
            logger.warning(
                "Rate-limit counters cannot reach Redis (%s: %s); counting in this "
                "process until it answers again",
                type(exc).__name__,
                exc,
            )

    def answered(self) -> None:
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                logger.warning("Rate-limit counters reach Redis again")


_redis_state = _RedisState()


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
        decision = _redis_hit(full_key, limit=limit, window_ms=window_ms, now_ms=now_ms, cost=cost)
        if decision is not None:
            return decision
        RATE_LIMIT_UNAVAILABLE.inc()
    allowed, used, reset = _local.hit(
        full_key, limit=limit, window_ms=window_ms, now_ms=now_ms, cost=cost
    )
    return Decision(allowed, limit, used, reset)


def _redis_hit(
    full_key: str, *, limit: int, window_ms: int, now_ms: int, cost: int
) -> Decision | None:
    """The shared counter's decision, or None when Redis cannot be reached now."""
    if not _redis_state.usable():
        return None
    import redis

    _, script = _redis(settings.REDIS_URL)
    try:
        allowed, used, reset = script(keys=[full_key], args=[limit, window_ms, now_ms, cost])
    except redis.RedisError as exc:
        _redis_state.failed(exc)
        return None
    _redis_state.answered()
    return Decision(bool(int(allowed)), limit, float(used), float(reset))


def reset_local() -> None:
    """Forget in-process counts (tests)."""
    global _local
    _local = _LocalCounters()
