"""Chats: WebSocket origins, history sent to the model, leases and idempotency,
attachments."""

from pathlib import Path

from .env import BASE_DIR, env

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
