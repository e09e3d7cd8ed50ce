"""Settings, read from the environment (and an optional `.env` file beside manage.py).

Every variable is listed in `.env.example` and the README. Defaults are the embedded
configuration: a SQLite file in the project folder, an in-process cache and channel
layer, and no provider keys.

The Django framework's settings are here; the product's are in the sibling modules, one
per sub-domain (llm, chats, limits, tools, observability), read in by this one.
"""

import os
import sys
import tempfile
from pathlib import Path

from .chats import *  # noqa: F403
from .chats import ATTACHMENT_STORAGE_BACKEND, ATTACHMENT_STORAGE_OPTIONS
from .env import BASE_DIR, env
from .limits import *  # noqa: F403
from .llm import *  # noqa: F403
from .observability import *  # noqa: F403
from .tools import *  # noqa: F403

# An insecure key is generated for local runs only; production must set SECRET_KEY.
SECRET_KEY = env.str("SECRET_KEY", default="insecure-dev-only-" + "x" * 40)
# Key for secrets stored in the database (webhook headers, MCP API keys); derived from
# SECRET_KEY when unset.
SECRETS_ENCRYPTION_KEY = env.str("SECRETS_ENCRYPTION_KEY", default="")
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
# Streams hold a connection only for each short write (llmwrapper/db.py). A pool that
# lends no connection within DATABASE_POOL_TIMEOUT answers 503 with Retry-After.
# CONN_HEALTH_CHECKS makes the pool check every connection it lends, so after a
# database restart the dead ones are replaced instead of failing their requests.
DATABASE_POOL_TIMEOUT = env.float("DATABASE_POOL_TIMEOUT", default=5.0)
# A pool that is busy, not stuck (it lent a connection within DATABASE_POOL_TIMEOUT),
# keeps a unit queued for this long in all before the request answers 503.
DATABASE_POOL_QUEUE_SECONDS = env.float("DATABASE_POOL_QUEUE_SECONDS", default=30.0)
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
