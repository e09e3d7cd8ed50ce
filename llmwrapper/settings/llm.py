"""Model calls: content limits, providers, timeouts, retries and fallbacks, model
aliases, the tool loop, and the records of each call."""

from providers.core.descriptors import all_descriptors

from .env import env

# Images and documents in messages (see providers.core.content): the decoded size of one
# part and of all parts of a message (413 above), and the parts of one message (400).
CONTENT_PART_MAX_BYTES = env.int("CONTENT_PART_MAX_BYTES", default=10 * 1024 * 1024)
CONTENT_MESSAGE_MAX_BYTES = env.int("CONTENT_MESSAGE_MAX_BYTES", default=20 * 1024 * 1024)
CONTENT_MAX_PARTS = env.int("CONTENT_MAX_PARTS", default=20)

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

# OpenAI-compatible API: bare model names routed to "provider/model", e.g.
# MODEL_ALIASES={"gpt-4o": "openai/gpt-4o", "claude": "anthropic/claude-sonnet-5"}
# How long a process remembers the stored connections and routes a subtenant sees
# (changes made through this process apply at once).
CONNECTIONS_CACHE_SECONDS = env.float("CONNECTIONS_CACHE_SECONDS", default=5.0)
MODEL_ALIASES = env.json("MODEL_ALIASES", default={})

# The tool loop.
TOOL_MAX_ROUNDS = env.int("TOOL_MAX_ROUNDS", default=5)
TOOL_TIMEOUT = env.float("TOOL_TIMEOUT", default=30.0)
TOOL_MAX_RESULT_CHARS = env.int("TOOL_MAX_RESULT_CHARS", default=16_000)

# LLM call records are stored by a background thread, off the request path (false:
# before the response is sent).
CALL_RECORDS_IN_BACKGROUND = env.bool("CALL_RECORDS_IN_BACKGROUND", default=True)
# The writer stores what arrives within this many seconds of a record in one batch
# (0: each as soon as it can).
CALL_RECORDS_BATCH_SECONDS = env.float("CALL_RECORDS_BATCH_SECONDS", default=0.2)
# While the database is away the writer keeps its records and retries this long.
CALL_RECORDS_RETRY_SECONDS = env.float("CALL_RECORDS_RETRY_SECONDS", default=600.0)
# Seconds a process keeps the price table (0 = read it for every batch of call records).
PRICE_CACHE_SECONDS = env.float("PRICE_CACHE_SECONDS", default=5.0)
