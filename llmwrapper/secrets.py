"""Encryption at rest for secrets tenants hand us (webhook headers, MCP keys).

Fernet (AES-128-CBC + HMAC) with a key from SECRETS_ENCRYPTION_KEY, or derived from
SECRET_KEY when that is unset. Rotating the key makes stored secrets unreadable:
re-enter them (or keep the old key) when rotating.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(f"llmwrapper.secrets:{secret}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _current() -> Fernet:
    return _fernet(settings.SECRETS_ENCRYPTION_KEY or settings.SECRET_KEY)


def seal(value: Any) -> str:
    """Encrypt any JSON value; empty values are stored as ''."""
    if value in (None, "", {}, []):
        return ""
    return _current().encrypt(json.dumps(value).encode()).decode()


def unseal(token: str, default: Any = None) -> Any:
    if not token:
        return default
    try:
        return json.loads(_current().decrypt(token.encode()))
    except InvalidToken as exc:
        raise RuntimeError("A stored secret cannot be decrypted: was the key rotated?") from exc


def mask(secret: str | None) -> str | None:
    """Enough of a secret to recognise it, never enough to use it."""
    if not secret:
        return None
    return "****" + secret[-4:] if len(secret) >= 12 else "****"
