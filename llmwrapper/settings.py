"""Settings, read from the environment (and an optional `.env` file beside manage.py).

Every variable is listed in `.env.example` and the README. Defaults are the embedded
configuration: a SQLite file in the project folder, an in-process cache and channel
layer, and no provider keys.
"""

import os
import sys
import tempfile
from pathlib import Path

import environ

from providers.core.descriptors import all_descriptors

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# An insecure key is generated for local runs only; production must set SECRET_KEY.
SECRET_KEY = env.str("SECRET_KEY", default="insecure-dev-only-" + "x" * 40)
DEBUG = env.bool("DEBUG", default=False)
# The demo (make demo): every provider is a scripted fake vendor on 127.0.0.1
# (providers.testing.demo), and the admin, /health and the API docs say so.
DEMO = env.bool("DEMO", default=False)
# Checked on every request and WebSocket handshake (llmwrapper.middleware), not only by
# the admin: other Hosts get 400 `invalid_host` (WebSocket: refused). /health answers any.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # First, so its admin templates (the demo banner, the usage dashboard's link) take
    # precedence over the admin's own; it also holds the project's management commands.
    "llmwrapper",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI and ReDoc as static files of our own: the API docs work offline.
    "drf_spectacular_sidecar",
    "channels",
    "corsheaders",
    "tenants",
    "chats",
    "memories",
    "providers",
    "tools",
    "connections",
]

# daphne makes `manage.py runserver` serve ASGI (HTTP and WebSocket). Other servers
# (uvicorn in production) do not need it, nor the Twisted stack it loads.
if "runserver" in sys.argv:
    INSTALLED_APPS.insert(0, "daphne")

MIDDLEWARE = [
    "llmwrapper.observability.middleware.RequestObservabilityMiddleware",
    "llmwrapper.middleware.AllowedHostsMiddleware",
    "llmwrapper.middleware.BodySizeLimitMiddleware",
    "tenants.limits.RateLimitHeadersMiddleware",
    "llmwrapper.middleware.SecurityHeadersMiddleware",
    # Static files in every mode (make run, make serve, the image): WhiteNoise.
    "llmwrapper.staticfiles.StaticFilesMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "llmwrapper.middleware.UrlTextMiddleware",
    # Sessions, auth, messages and APPEND_SLASH for the admin only (see the class).
    "llmwrapper.middleware.BrowserSessionMiddleware",
]
SILENCED_SYSTEM_CHECKS = [
    # Sessions, auth and messages run inside BrowserSessionMiddleware, out of the
    # admin checks' sight.
    "admin.E408",
    "admin.E409",
    "admin.E410",
    # SecurityHeadersMiddleware runs Django's SecurityMiddleware and
    # XFrameOptionsMiddleware (tests check their headers and the https redirect).
    "security.W001",
    "security.W002",
    # The API authenticates with bearer keys, not cookies, so it is not open to CSRF;
    # the admin's views are csrf_protect'ed themselves.
    "security.W003",
]

ROOT_URLCONF = "llmwrapper.urls"
ASGI_APPLICATION = "llmwrapper.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Under ASGI every request runs its database work on a thread of its own; those threads
# are reused (llmwrapper/asgi_handler.py). On PostgreSQL connections are borrowed from
# psycopg's pool (DATABASE_POOL_MAX_SIZE per process), which needs CONN_MAX_AGE 0; a
# SQLite connection stays open with its thread (opening one costs about 2 ms).
_IS_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
DATABASES["default"].setdefault("CONN_MAX_AGE", 600 if _IS_SQLITE else 0)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Streams hold a connection only for each short write (llmwrapper/db.py). A pool with no
# connection free within DATABASE_POOL_TIMEOUT answers 503 with Retry-After at once.
# CONN_HEALTH_CHECKS makes the pool check every connection it lends, so after a
# database restart the dead ones are replaced instead of failing their requests.
DATABASE_POOL_TIMEOUT = env.float("DATABASE_POOL_TIMEOUT", default=5.0)
# How long the final write of a streamed answer is retried while the database is away.
DATABASE_RETRY_SECONDS = env.float("DATABASE_RETRY_SECONDS", default=15.0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
        "timeout": DATABASE_POOL_TIMEOUT,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the SSE and WebSocket paths write while others read.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests use a file too: threads, async views and WebSocket consumers then share the
    # database exactly as they do in production (an in-memory database is per-connection).
    # One per test run, so runs side by side don't share it.
    DATABASES["default"].setdefault(
        "TEST",
        {"NAME": str(Path(tempfile.gettempdir()) / f"llmwrapper-test-{os.getpid()}.sqlite3")},
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="llmwrapper"),
            # A cache that cannot be reached is a miss (logged), never a failed request.
            "OPTIONS": {
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 2,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    # channels-redis waits for a socket's messages with 5 s blocking reads (BZPOPMIN),
    # so a read timeout would have to outlast them (redis-py's default, 5 s, makes every
    # idle socket fail). None it is: with a socket timeout, redis-py 8 also writes each
    # command under asyncio.wait_for, which on Python 3.11 can swallow a cancellation,
    # leaving a closed socket's receive running for ever. TCP keepalive and health
    # checks find dead connections instead; connecting still fails fast. No retries
    # inside the client: chats.fanout sees each failure and rejoins the groups a
    # restarted Redis forgot.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": None,
                        "socket_connect_timeout": 2,
                        "socket_keepalive": True,
                        "health_check_interval": 30,
                    }
                ],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="llmwrapper"),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files (the admin's, Swagger UI's and ReDoc's) are served by the service itself
# (llmwrapper.staticfiles, WhiteNoise), from STATIC_ROOT as `manage.py collectstatic`
# leaves them: names with a hash of their content (cached by browsers for a year) and
# gzip-compressed copies. `make run`, `make serve` and the image collect them. Tests
# serve them from the apps' folders under their plain names, with nothing to collect.
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
_STATIC_FROM_APPS = bool(os.environ.get("PYTEST_VERSION"))
WHITENOISE_USE_FINDERS = DEBUG or _STATIC_FROM_APPS
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_MAX_AGE = 0 if DEBUG else 3600

# Security headers and cookies. The defaults suit `make run` on plain http; production
# behind TLS sets SECURE_SSL_REDIRECT, SECURE_HSTS_SECONDS and SECURE_COOKIES (and
# USE_X_FORWARDED_PROTO behind a proxy that terminates TLS): then
# `manage.py check --deploy` is clean.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# CORS for browser clients of the API (none allowed by default).
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_ALL_ORIGINS = env.bool("CORS_ALLOW_ALL_ORIGINS", default=False)
CORS_URLS_REGEX = r"^/(api|v1)/.*$"
CORS_ALLOW_HEADERS = [
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
    "x-chat-id",
]
CORS_EXPOSE_HEADERS = [
    "x-request-id",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "idempotent-replayed",
]

# Request bodies above this size answer 413 (checked from Content-Length before reading,
# and by Django while reading a body of unknown length).
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=1_048_576)
# Bodies of the endpoints that take messages, which may carry images and documents
# (chat sends, /api/v1/llm/complete|stream, /v1/chat/completions).
MAX_CONTENT_REQUEST_BYTES = env.int("MAX_CONTENT_REQUEST_BYTES", default=32 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(MAX_REQUEST_BODY_BYTES, MAX_CONTENT_REQUEST_BYTES)

# Images and documents in messages (see providers.core.content): the decoded size of one
# part and of all parts of a message (413 above), and the parts of one message (400).
CONTENT_PART_MAX_BYTES = env.int("CONTENT_PART_MAX_BYTES", default=10 * 1024 * 1024)
CONTENT_MESSAGE_MAX_BYTES = env.int("CONTENT_MESSAGE_MAX_BYTES", default=20 * 1024 * 1024)
CONTENT_MAX_PARTS = env.int("CONTENT_MAX_PARTS", default=20)

# Images and documents of chat messages are files in the "attachments" storage, outside
# the database (chats/attachments.py). By default on disk under ATTACHMENTS_ROOT (beside
# the SQLite file), readable by the service's user only. ATTACHMENT_STORAGE_BACKEND names
# another Django storage class, e.g. an S3-compatible bucket with django-storages
# (`pip install django-storages[s3]`, "storages.backends.s3.S3Storage"), configured by
# ATTACHMENT_STORAGE_OPTIONS (JSON: that class's options, e.g. bucket_name, endpoint_url).
ATTACHMENTS_ROOT = Path(env.str("ATTACHMENTS_ROOT", default="") or BASE_DIR / "attachments")
ATTACHMENT_STORAGE_BACKEND = env.str(
    "ATTACHMENT_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
)
ATTACHMENT_STORAGE_OPTIONS = env.json("ATTACHMENT_STORAGE_OPTIONS", default={})
if ATTACHMENT_STORAGE_BACKEND == "django.core.files.storage.FileSystemStorage":
    ATTACHMENT_STORAGE_OPTIONS = {
        "location": str(ATTACHMENTS_ROOT),
        "file_permissions_mode": 0o600,
        "directory_permissions_mode": 0o700,
        **ATTACHMENT_STORAGE_OPTIONS,
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if _STATIC_FROM_APPS
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
    "attachments": {"BACKEND": ATTACHMENT_STORAGE_BACKEND, "OPTIONS": ATTACHMENT_STORAGE_OPTIONS},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["llmwrapper.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["llmwrapper.auth.IsApiKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Depth-bounded, refusing NUL, unpaired surrogates and non-finite numbers (400).
    "DEFAULT_PARSER_CLASSES": ["llmwrapper.parsers.SafeJSONParser"],
    # JSON is the one format: `?format=` is an ordinary (ignored) query parameter.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_PAGINATION_CLASS": "llmwrapper.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "llmwrapper.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "llmwrapper.openapi.ApiSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["tenants.limits.RequestRateThrottle"],
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "llmwrapper API" + (" (DEMO: scripted models, no vendor is called)" if DEMO else ""),
    "DESCRIPTION": (
        "One API in front of OpenAI, Anthropic, local (Ollama) and private "
        "OpenAI-compatible models, for many tenants. Authenticate with "
        "`Authorization: Bearer <api key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SECURITY": [{"ApiKeyAuth": []}],
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKeyAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "API key"}
        }
    },
    "AUTHENTICATION_WHITELIST": [],
    # /api/docs/ (Swagger UI) and /api/redoc/ load their scripts from our static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Rate limits (0 = unlimited). Per subtenant, overridable on each subtenant; per key,
# overridable on each key. Counters live in Redis when REDIS_URL is set.
RATE_LIMIT_RPM = env.int("RATE_LIMIT_RPM", default=0)
RATE_LIMIT_TPM = env.int("RATE_LIMIT_TPM", default=0)
RATE_LIMIT_KEY_RPM = env.int("RATE_LIMIT_KEY_RPM", default=0)
RATE_LIMIT_WINDOW_SECONDS = env.float("RATE_LIMIT_WINDOW_SECONDS", default=60.0)
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="llmwrapper")

# API keys: how often `last_used_at` is written (seconds), to keep writes off the hot path.
API_KEY_TOUCH_INTERVAL = env.int("API_KEY_TOUCH_INTERVAL", default=60)
# Seconds an authenticated key is remembered by a process (0 = look it up every time).
# Revocations reach the process that made them at once, the others within this time.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=10.0)

# Providers (read by providers.gateway into the provider registry). Each vendor's
# settings and their defaults come from its descriptor, declared next to its adapter
# (OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_DEFAULT_MODEL, ANTHROPIC_DEFAULT_MODEL,
# ANTHROPIC_MAX_TOKENS, LOCAL_LLM_ENDPOINT, PRIVATE_CLOUD_ENDPOINT...; README lists them).
DEFAULT_LLM_PROVIDER = env.str("DEFAULT_LLM_PROVIDER", default="openai")
for _vendor_setting in (s for d in all_descriptors() for s in d.settings):
    globals()[_vendor_setting.name] = env(
        _vendor_setting.name,
        cast=_vendor_setting.parse,
        default=_vendor_setting.parse(_vendor_setting.default) if _vendor_setting.default else "",
    )
PROVIDER_CONNECT_TIMEOUT = env.float("PROVIDER_CONNECT_TIMEOUT", default=5.0)
PROVIDER_READ_TIMEOUT = env.float("PROVIDER_READ_TIMEOUT", default=120.0)
# One model call (all its retries and fallbacks) ends within the total; a stream also
# ends when no whole event arrived for the idle time. Both raise a 504 provider_timeout.
PROVIDER_TOTAL_TIMEOUT = env.float("PROVIDER_TOTAL_TIMEOUT", default=300.0)
PROVIDER_IDLE_TIMEOUT = env.float("PROVIDER_IDLE_TIMEOUT", default=60.0)
PROVIDER_MAX_RETRIES = env.int("PROVIDER_MAX_RETRIES", default=2)
PROVIDER_RETRY_BASE_DELAY = env.float("PROVIDER_RETRY_BASE_DELAY", default=0.5)
PROVIDER_RETRY_MAX_DELAY = env.float("PROVIDER_RETRY_MAX_DELAY", default=8.0)
# Providers tried in order when the chosen one fails before answering ("name" or "name/model").
LLM_FALLBACKS = env.list("LLM_FALLBACKS", default=[])

# Browser pages allowed to open chat WebSockets ("*" for any). Clients that send no
# Origin header (servers, CLIs) are not browsers and are always allowed.
WEBSOCKET_ALLOWED_ORIGINS = env.list(
    "WEBSOCKET_ALLOWED_ORIGINS", default=["http://localhost:8000", "http://127.0.0.1:8000"]
)

# Chats: how much history is sent to the model. The newest messages are loaded (at
# most CHAT_HISTORY_MAX_MESSAGES) and the oldest dropped until an estimate (4
# characters a token) fits CHAT_CONTEXT_MAX_TOKENS; the system prompt, memories and the
# new message always stay, and a tool call is never separated from its results.
CHAT_HISTORY_MAX_MESSAGES = env.int("CHAT_HISTORY_MAX_MESSAGES", default=100)
CHAT_CONTEXT_MAX_TOKENS = env.int("CHAT_CONTEXT_MAX_TOKENS", default=16_000)
IDEMPOTENCY_KEY_MAX_LENGTH = 255
# A message being streamed, and a send holding an Idempotency-Key, carry a lease their
# process renews every CHAT_LEASE_SECONDS / 3; when a worker dies, any process's
# sweeper marks its messages `interrupted` and frees its keys once the lease lapses.
# The partial text of a stream is saved every CHAT_PARTIAL_SAVE_SECONDS (0: only at
# the end), so a crash loses at most that much.
CHAT_LEASE_SECONDS = env.float("CHAT_LEASE_SECONDS", default=30.0)
CHAT_PARTIAL_SAVE_SECONDS = env.float("CHAT_PARTIAL_SAVE_SECONDS", default=5.0)
# Whether a serving process runs the lease sweeper (off only for tests in-process).
CHAT_LEASE_SWEEP = env.bool("CHAT_LEASE_SWEEP", default=True)

# LLM call records are stored by a background thread, off the request path (false:
# before the response is sent).
CALL_RECORDS_IN_BACKGROUND = env.bool("CALL_RECORDS_IN_BACKGROUND", default=True)
# While the database is away the writer keeps its records and retries this long.
CALL_RECORDS_RETRY_SECONDS = env.float("CALL_RECORDS_RETRY_SECONDS", default=600.0)

# The tool loop.
TOOL_MAX_ROUNDS = env.int("TOOL_MAX_ROUNDS", default=5)
TOOL_TIMEOUT = env.float("TOOL_TIMEOUT", default=30.0)
TOOL_MAX_RESULT_CHARS = env.int("TOOL_MAX_RESULT_CHARS", default=16_000)

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

# Key for secrets stored in the database (webhook headers, MCP API keys); derived from
# SECRET_KEY when unset.
SECRETS_ENCRYPTION_KEY = env.str("SECRETS_ENCRYPTION_KEY", default="")

# Tools: custom code functions run under bubblewrap; webhooks and MCP URLs go through
# the outbound guard.
CODE_FUNCTIONS_ENABLED = env.bool("CODE_FUNCTIONS_ENABLED", default=True)
SANDBOX_TIMEOUT = env.float("SANDBOX_TIMEOUT", default=5.0)
# A call's memory and processes in total, over everything it forks: a cgroup per call
# where the service's cgroup tree is writable, else SANDBOX_MEMORY_MB shared out as
# address space over at most SANDBOX_FALLBACK_MAX_PROCS processes. SANDBOX_LIMIT_MODE:
# auto, cgroup (refuse calls without one), rlimit, or per_process (no total: opt-out).
SANDBOX_MEMORY_MB = env.int("SANDBOX_MEMORY_MB", default=256)
SANDBOX_MAX_PROCS = env.int("SANDBOX_MAX_PROCS", default=16)
SANDBOX_FALLBACK_MAX_PROCS = env.int("SANDBOX_FALLBACK_MAX_PROCS", default=4)
SANDBOX_LIMIT_MODE = env.str("SANDBOX_LIMIT_MODE", default="auto")
# Under cgroup v2 outside a container's own cgroup namespace, per-call cgroups are used
# only when the service's cgroup is delegated to it (systemd Delegate=yes): say so here.
SANDBOX_CGROUP_DELEGATED = env.bool("SANDBOX_CGROUP_DELEGATED", default=False)
SANDBOX_MAX_CONCURRENT = env.int("SANDBOX_MAX_CONCURRENT", default=4)
# Private hosts, IPs or CIDRs that webhooks and MCP servers may reach (e.g. 10.0.0.0/8).
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=[])
# Plain http is only allowed towards allowlisted hosts; public URLs must be https.
OUTBOUND_TIMEOUT = env.float("OUTBOUND_TIMEOUT", default=10.0)
OUTBOUND_MAX_RESPONSE_BYTES = env.int("OUTBOUND_MAX_RESPONSE_BYTES", default=1_000_000)
# A PEM bundle of the certificate authorities outbound https calls trust instead of the
# default store (webhooks, MCP over HTTP and SSE, image fetches), e.g. an internal CA.
OUTBOUND_CA_FILE = env.str("OUTBOUND_CA_FILE", default="")
MCP_TIMEOUT = env.float("MCP_TIMEOUT", default=30.0)

# OpenAI-compatible API: bare model names routed to "provider/model", e.g.
# MODEL_ALIASES={"gpt-4o": "openai/gpt-4o", "claude": "anthropic/claude-sonnet-5"}
# How long a process remembers the stored connections and routes a subtenant sees
# (changes made through this process apply at once).
CONNECTIONS_CACHE_SECONDS = env.float("CONNECTIONS_CACHE_SECONDS", default=5.0)
MODEL_ALIASES = env.json("MODEL_ALIASES", default={})

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
# Seconds a process keeps a subtenant's list of server-side tools (0 = read it each time).
TOOL_CATALOG_CACHE_SECONDS = env.float("TOOL_CATALOG_CACHE_SECONDS", default=5.0)
# Seconds a process keeps the price table (0 = read it for every batch of call records).
PRICE_CACHE_SECONDS = env.float("PRICE_CACHE_SECONDS", default=5.0)
