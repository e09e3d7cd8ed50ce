"""The Prometheus metrics of the service (served by `views.metrics` at `GET /metrics`).

Labels stay bounded so that no caller can grow the number of series: routes are URL
patterns, never paths; no subtenant or key appears; model and tool names come from
callers and registries, so each gets at most `MAX_LABEL_VALUES` distinct values per
process and the rest are counted as `other`.

Metrics live in the process. With several worker processes, either scrape each one or
set `PROMETHEUS_MULTIPROC_DIR` (before the processes start, to an empty directory) so
that prometheus-client shares them through files and `/metrics` reports the sum.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# `*_created` series double the output and no dashboard here uses them.
disable_created_metrics()

MAX_LABEL_VALUES = 50
OTHER = "other"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "llmwrapper_http_requests",
    "HTTP requests answered, by method, route pattern and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "llmwrapper_http_request_duration_seconds",
    "Time from receiving a request to the end of its response (streams: the last event).",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
PROVIDER_CALLS = Counter(
    "llmwrapper_provider_calls",
    "Model calls (one per tool-loop round, retries and fallbacks included), by outcome.",
    ["provider", "model", "status"],
)
PROVIDER_DURATION = Histogram(
    "llmwrapper_provider_call_duration_seconds",
    "Duration of a model call, until its stream ended.",
    ["provider", "model"],
    buckets=_LATENCY_BUCKETS,
)
PROVIDER_FIRST_TOKEN = Histogram(
    "llmwrapper_provider_time_to_first_token_seconds",
    "Time from starting a model call to its first text or tool call.",
    ["provider", "model"],
    buckets=_LATENCY_BUCKETS,
)
PROVIDER_TOKENS = Counter(
    "llmwrapper_provider_tokens",
    "Tokens reported by the providers, by direction (input or output).",
    ["provider", "model", "direction"],
)
PROVIDER_ERRORS = Counter(
    "llmwrapper_provider_errors",
    "Provider errors by type, including attempts that were retried or fell back.",
    ["provider", "type"],
)
ACTIVE_STREAMS = Gauge(
    "llmwrapper_active_streams",
    "Open response streams: SSE responses, and chat WebSocket connections.",
    ["transport"],
    multiprocess_mode="livesum",
)
TOOL_CALLS = Counter(
    "llmwrapper_tool_calls",
    "Server-side tool calls, by kind (builtin, function, mcp), tool and outcome.",
    ["kind", "tool", "status"],
)
TOOL_DURATION = Histogram(
    "llmwrapper_tool_call_duration_seconds",
    "Duration of a server-side tool call.",
    ["kind"],
    buckets=_LATENCY_BUCKETS,
)
RATE_LIMIT_UNAVAILABLE = Counter(
    "llmwrapper_rate_limit_unavailable",
    "Rate-limit checks counted in the process alone because Redis could not be reached.",
)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    from prometheus_client import multiprocess

    # A worker that exits cleanly takes its open-stream count with it.
    atexit.register(multiprocess.mark_process_dead, os.getpid())


class BoundedLabel:
    """Caller-controlled label values, capped at `limit` distinct ones per process.

    Only values that were `admit`ted (e.g. a model the vendor accepted) take a slot, so
    a flood of made-up names in failing requests cannot crowd out the real ones.
    """

    def __init__(self, limit: int = MAX_LABEL_VALUES, max_length: int = 100) -> None:
        self.limit = limit
        self.max_length = max_length
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str, *, admit: bool = False) -> str:
        value = value[: self.max_length]
        if value in self._known:
            return value
        if admit:
            with self._lock:
                if len(self._known) < self.limit:
                    self._known.add(value)
                    return value
        return OTHER


model_label = BoundedLabel()
tool_label = BoundedLabel()


_http_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def observe_http_request(method: str, route: str, status: str, seconds: float) -> None:
    """Count one request; the label children are looked up once per series."""
    series = _http_series.get((method, route, status))
    if series is None:
        series = (
            HTTP_REQUESTS.labels(method, route, status),
            HTTP_DURATION.labels(method, route),
        )
        _http_series[(method, route, status)] = series  # bounded: routes x methods x statuses
    series[0].inc()
    series[1].observe(seconds)


def method_label(method: str) -> str:
    return method if method in _HTTP_METHODS else "OTHER"
