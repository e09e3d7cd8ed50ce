"""OpenTelemetry tracing: off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

When it is on, every HTTP request gets a server span (the ASGI instrumentation, renamed
to the route pattern by the request middleware), with children for model calls and tool
calls (`genai`), outgoing HTTP (httpx: OpenAI and Ollama, whose adapters then send
through httpx only, not their own HTTP client; httpx2 under the Anthropic SDK
and MCP), PostgreSQL (psycopg) and Redis. Spans go over OTLP (http/protobuf); the
exporter reads the standard `OTEL_EXPORTER_OTLP_*` variables (endpoint, headers,
timeout).

When it is off nothing is installed: the ASGI wrapper passes requests straight through,
and `tracer()` is OpenTelemetry's no-op tracer, so the spans of `genai` cost nothing.

Django's own instrumentation is not used: its middleware is sync-only, and under ASGI a
sync middleware moves every request through a worker thread.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from providers.core import http1

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
AsgiApp = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Any]

# Health checks and scrapes arrive every few seconds and say nothing about users' traffic.
EXCLUDED_URLS = "/health$,/metrics$"


@dataclass
class _Installed:
    provider: Any  # opentelemetry.sdk.trace.TracerProvider
    tracer: trace.Tracer
    instrumentors: list[Any] = field(default_factory=list)


_installed: _Installed | None = None
_lock = threading.Lock()
_NOOP_TRACER = trace.NoOpTracer()


def enabled() -> bool:
    return _installed is not None


def tracer() -> trace.Tracer:
    """The tracer for our own spans: a no-op one while tracing is off."""
    return _installed.tracer if _installed is not None else _NOOP_TRACER


def configure_tracing(
    *,
    processor: Any,
    service_name: str = "llmwrapper",
    sample_ratio: float = 1.0,
    set_global: bool = True,
) -> Any:
    """Turn tracing on with `processor` (a SpanProcessor); returns the TracerProvider.

    Idempotent: the provider and the instrumentations are installed once per process,
    and a later call only adds its processor. `set_global=False` keeps the provider out
    of OpenTelemetry's global (which cannot be replaced once set), so tests can turn
    tracing off again with `shutdown_tracing`.
    """
    global _installed
    with _lock:
        if _installed is None:
            _installed = _install(service_name, sample_ratio, set_global)
        _installed.provider.add_span_processor(processor)
        return _installed.provider


def configure_tracing_from_settings() -> bool:
    """Start tracing at process start when an OTLP endpoint is configured."""
    from django.conf import settings

    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if not endpoint or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and _HEADERS, _TIMEOUT, ...) itself,
    # appending /v1/traces to the endpoint as the specification says.
    configure_tracing(
        processor=BatchSpanProcessor(OTLPSpanExporter()),
        service_name=settings.OTEL_SERVICE_NAME,
        sample_ratio=settings.TRACING_SAMPLE_RATIO,
    )
    return True


def shutdown_tracing() -> None:
    """Flush and stop: instrumentations removed, our spans no-ops again."""
    global _installed
    with _lock:
        installed, _installed = _installed, None
    if installed is None:
        return
    for instrumentor in installed.instrumentors:
        instrumentor.uninstrument()
    http1.use(True)
    installed.provider.shutdown()


def _install(service_name: str, sample_ratio: float, set_global: bool) -> _Installed:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(root=_SkipOrphanClientSpans(TraceIdRatioBased(sample_ratio))),
    )
    if set_global:
        trace.set_tracer_provider(provider)
    installed = _Installed(provider, provider.get_tracer("llmwrapper"))
    installed.instrumentors = _instrument_libraries(provider)
    http1.use(False)  # vendor calls through httpx, which is instrumented
    return installed


def _instrument_libraries(provider: Any) -> list[Any]:
    from opentelemetry.instrumentation.httpx import (
        HTTPX2ClientInstrumentor,
        HTTPXClientInstrumentor,
    )
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    done = []
    # The instrumentors patch classes, so clients built before this point are covered too.
    for instrumentor in (
        HTTPXClientInstrumentor(),  # OpenAI and OpenAI-compatible, Ollama
        HTTPX2ClientInstrumentor(),  # the Anthropic SDK, MCP over HTTP
        PsycopgInstrumentor(),
        RedisInstrumentor(),
    ):
        if instrumentor.is_instrumented_by_opentelemetry:
            continue
        try:
            instrumentor.instrument(tracer_provider=provider)
        except Exception:  # a missing optional library must not stop the service
            logger.warning("tracing: %s not installed", type(instrumentor).__name__)
            continue
        done.append(instrumentor)
    return done


class _SkipOrphanClientSpans:
    """Drop outgoing calls (database, Redis, HTTP) that belong to no request.

    The channel layer polls Redis in the background, and connections are checked and
    kept alive outside requests; as traces of their own those would outnumber the
    requests and tell nothing. Our model-call spans are kept: a WebSocket turn has no
    request span above them. (The instrumentations set a span's attributes only once it
    has started, so the kind is what the sampler can go by.)
    """

    def __init__(self, delegate: Any) -> None:
        self._delegate = delegate

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, **kw):  # type: ignore[no-untyped-def]
        from opentelemetry.sdk.trace.sampling import Decision, SamplingResult
        from opentelemetry.trace import SpanKind

        if kind == SpanKind.CLIENT and not (attributes and "gen_ai.operation.name" in attributes):
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind=kind, attributes=attributes, **kw
        )

    def get_description(self) -> str:
        return f"SkipOrphanClientSpans{{{self._delegate.get_description()}}}"


class TracedAsgiApp:
    """The ASGI app, behind OpenTelemetry's ASGI middleware while tracing is on.

    The check happens per request (one attribute read), so tracing can be configured
    after the application object was built, by the server's startup or by a test.
    """

    def __init__(self, app: AsgiApp) -> None:
        self.app = app
        self._traced: AsgiApp | None = None
        self._traced_by: _Installed | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        installed = _installed
        if installed is None or scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self._traced_by is not installed:
            from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

            self._traced = OpenTelemetryMiddleware(
                self.app,
                excluded_urls=EXCLUDED_URLS,
                # The method only: the request middleware renames the span to the route
                # once Django has resolved it (a raw path would be unbounded).
                default_span_details=lambda scope: (scope.get("method", "HTTP"), {}),
                tracer_provider=installed.provider,
                # One span per ASGI message would mean one per streamed event.
                exclude_spans=["receive", "send"],
            )
            self._traced_by = installed
        assert self._traced is not None
        return await self._traced(scope, receive, send)


def name_server_span(method: str, route: str) -> None:
    """Give the current HTTP server span its low-cardinality name and `http.route`."""
    if _installed is None:
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
