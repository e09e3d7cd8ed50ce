"""Observability: request logs, Prometheus metrics and OpenTelemetry tracing.

- `middleware.RequestObservabilityMiddleware`: one structured log line and the HTTP
  metrics per request, and the `X-Request-ID` header.
- `genai`: what `providers.core.loop` and `tools.executor` call around each provider call and
  each tool call (a span, metrics, and the figures the request log reports).
- `metrics` / `views.metrics`: the Prometheus metrics and `GET /metrics`.
- `tracing`: OpenTelemetry setup, off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
- `logging.JsonFormatter`: every log line of the process as one JSON object.

`context`, `genai`, `metrics` and `tracing` import nothing from Django, so the provider
core can use them and still be tested alone.
"""
