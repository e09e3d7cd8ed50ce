"""Rate limits and API keys."""

from .env import env

# Rate limits (0 = unlimited). Per subtenant, overridable on each subtenant; per key,
# overridable on each key. Counters live in Redis when REDIS_URL is set.
RATE_LIMIT_RPM = env.int("RATE_LIMIT_RPM", default=0)
RATE_LIMIT_TPM = env.int("RATE_LIMIT_TPM", default=0)
RATE_LIMIT_KEY_RPM = env.int("RATE_LIMIT_KEY_RPM", default=0)
RATE_LIMIT_WINDOW_SECONDS = env.float("RATE_LIMIT_WINDOW_SECONDS", default=60.0)
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="llmwrapper")

# API keys: how often `last_used_at` is written (seconds), to keep writes off the hot path.
API_KEY_TOUCH_INTERVAL = env.int("API_KEY_TOUCH_INTERVAL", default=60)
# The common case of the hottest endpoints answered before Django's handler
# (llmwrapper/lane.py, surfaces/routes.py); off sends every request through Django.
HOT_LANE = env.bool("HOT_LANE", default=True)
# Seconds an authenticated key is remembered by a process (0 = look it up every time).
# Revocations reach the process that made them at once, the others within this time.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=10.0)
