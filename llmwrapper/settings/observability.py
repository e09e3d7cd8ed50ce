"""Logging, /metrics and tracing."""

from .env import env

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Request errors are rendered by our handlers; Django's own 4xx warnings are noise.
        "django.request": {"level": "ERROR"},
        # One line per upstream request is noise at INFO; errors still surface.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
    },
}

# Observability (llmwrapper.observability): request logs, /metrics and tracing.
# Every log line is a JSON object (LOG_FORMAT=text for humans). Message contents and
# request/response bodies are logged only with LOG_CONTENT=true, cut to
# LOG_CONTENT_MAX_CHARS, with API keys and credential fields redacted.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOG_CONTENT = env.bool("LOG_CONTENT", default=False)
LOG_CONTENT_MAX_CHARS = env.int("LOG_CONTENT_MAX_CHARS", default=2000)
LOGGING["formatters"]["json"] = {"()": "llmwrapper.observability.logging.JsonFormatter"}
LOGGING["handlers"]["console"]["formatter"] = "plain" if LOG_FORMAT == "text" else "json"
# uvicorn's own lines (startup, shutdown, errors) in the same format once the app is
# loaded; its access log is off, since the request log says more.
LOGGING["loggers"]["uvicorn"] = {"handlers": ["console"], "level": "INFO", "propagate": False}
LOGGING["loggers"]["uvicorn.access"] = {"handlers": [], "propagate": False}
# Credentials (keys in query strings, Authorization values, lw_ and sk- keys) are
# redacted from every line, the servers' own included; importing the ASGI application
# also puts the filter on the handlers the server set up (observability.redaction).
LOGGING["filters"] = {"redact": {"()": "llmwrapper.observability.redaction.RedactSecrets"}}
LOGGING["handlers"]["console"]["filters"] = ["redact"]
# Django's default handlers for "django" (an unfiltered console copy under DEBUG, and
# mail_admins) are dropped: its records reach the console handler through the root.
LOGGING["loggers"]["django"] = {"level": "INFO"}
# GET /metrics: callers must come from METRICS_ALLOWED_IPS (IPs or CIDRs; empty or "*"
# for any) and, when METRICS_TOKEN is set, send it as a Bearer token.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
# OpenTelemetry traces over OTLP (http/protobuf) when an endpoint is set; off otherwise;
# TRACING_SAMPLE_RATIO of the requests are traced.
# The exporter also reads the other OTEL_EXPORTER_OTLP_* variables (headers, timeout).
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="llmwrapper")
TRACING_SAMPLE_RATIO = env.float("TRACING_SAMPLE_RATIO", default=1.0)
