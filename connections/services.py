"""Creating, changing and deleting connections and routes.

A connection a subtenant key creates names an endpoint the tenant chose: its URL must
pass the outbound guard (https; no private address unless OUTBOUND_ALLOWED_HOSTS allows
it) when it is stored, and every call to it goes through the guard again (see
`catalog.config_of`). Admin-created connections may name private hosts.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from connections.models import Connection, Route
from llmwrapper.errors import ResourceConflictError, ValidationFailedError
from llmwrapper.secrets import mask, seal, unseal
from tenants.models import Subtenant
from tools import netguard, runtime
from tools.errors import ToolError

SECRET_FIELDS = ("api_key", "headers")
T = TypeVar("T", Connection, Route)


def check_base_url(url: str, *, guarded: bool) -> None:
    """A 400 for a URL that is not http(s), or, for a tenant's connection, one the
    outbound guard refuses (checked now, and again on every call)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailedError(
            "Invalid request: see details.", details={"base_url": ["Must be an http(s) URL."]}
        )
    if not guarded:
        return
    try:
        netguard.check_url(url, runtime.outbound_policy(url))
    except ToolError as exc:
        raise ValidationFailedError(
            "Invalid request: see details.", details={"base_url": [exc.message]}
        ) from exc


def connection_create(*, owner: Subtenant | None, data: dict[str, Any]) -> Connection:
    fields = dict(data)
    secrets = {k: fields.pop(k) for k in SECRET_FIELDS if k in fields}
    if fields.get("base_url"):
        check_base_url(fields["base_url"], guarded=owner is not None)
    elif owner is not None and fields["kind"] in ("ollama", "openai_compatible", "azure_openai"):
        raise ValidationFailedError(
            "Invalid request: see details.", details={"base_url": ["Required for this kind."]}
        )
    connection = Connection(subtenant=owner, **fields)
    set_secrets(connection, secrets)
    return _insert(connection, "connection")


def connection_update(*, connection: Connection, data: dict[str, Any]) -> Connection:
    """Change the fields given; a secret given replaces the stored one (`null` clears it)."""
    fields = dict(data)
    secrets = {k: fields.pop(k) for k in SECRET_FIELDS if k in fields}
    if fields.get("base_url"):
        check_base_url(fields["base_url"], guarded=connection.subtenant_id is not None)
    for name, value in fields.items():
        setattr(connection, name, value)
    if secrets:
        set_secrets(connection, {**unseal(connection.secrets_sealed, {}), **secrets})
    connection.save()
    return connection


def set_secrets(connection: Connection, secrets: dict[str, Any]) -> None:
    """Store `secrets` (api_key, headers) encrypted, and the key's masked hint."""
    kept = {k: v for k, v in secrets.items() if v}
    connection.secrets_sealed = seal(kept)
    connection.api_key_hint = mask(kept.get("api_key")) or ""


def connection_delete(*, connection: Connection) -> None:
    connection.delete()


def route_create(*, owner: Subtenant | None, data: dict[str, Any]) -> Route:
    return _insert(Route(subtenant=owner, **data), "route")


def _insert(row: T, what: str) -> T:
    """Save a new connection or route; its name taken in its scope is a 409."""
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError as exc:
        raise ResourceConflictError(
            f"A {what} named '{row.name}' exists.", details={"name": row.name}
        ) from exc
    return row


def route_update(*, route: Route, data: dict[str, Any]) -> Route:
    for name, value in data.items():
        setattr(route, name, value)
    route.save()
    return route


def route_delete(*, route: Route) -> None:
    route.delete()
