"""`GET /health`: the service, its database and (when configured) Redis.

`status` is "ok" when every check is, "degraded" otherwise; each check says whether
the service needs it (`required`). Without the database nothing works: 503. Without
Redis the API still answers (rate limits are counted per process, the cache misses,
WebSocket fan-out across processes stops): 200, so a load balancer keeps routing to
processes that can serve, while monitoring sees "degraded" and the Redis check down.
In the demo (`make demo`) the answer also says `"demo": true`.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        # The exception class says enough (connection refused, timeout); its text can
        # carry hosts or credentials, so it is not returned.
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_database() -> None:
    # CONN_HEALTH_CHECKS replaces a broken persistent connection at request start, so
    # this query reflects the server as it is now.
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


_redis_clients: dict[str, Any] = {}


def _check_redis() -> None:
    import redis

    client = _redis_clients.get(settings.REDIS_URL)
    if client is None:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        _redis_clients[settings.REDIS_URL] = client
    client.ping()


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    checks = {"database": {**_timed(_check_database), "required": True}}
    if settings.REDIS_URL:
        checks["redis"] = {**_timed(_check_redis), "required": False}
    healthy = all(check["status"] == "ok" for check in checks.values())
    serving = all(check["status"] == "ok" for check in checks.values() if check["required"])
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded", "checks": checks}
    if settings.DEMO:
        body["demo"] = True  # every provider is the demo's scripted model (make demo)
    return JsonResponse(body, status=200 if serving else 503)
