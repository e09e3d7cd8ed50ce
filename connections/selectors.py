"""Reads of stored connections and routes, scoped by subtenant.

A subtenant sees the global connections and routes (stored without a subtenant) and its
own; its own shadow a global one of the same name. `None` stands for the global scope,
as an admin key addresses it. Another tenant's entries are never visible: a name only
they use answers as a name nobody uses.
"""

from __future__ import annotations

from uuid import UUID

from django.db.models import Q, QuerySet

from connections.models import Connection, Route
from llmwrapper.errors import ResourceNotFoundError
from tenants.models import Subtenant


def _visible(subtenant_id: UUID | None) -> Q:
    visible = Q(subtenant__isnull=True)
    if subtenant_id is not None:
        visible |= Q(subtenant_id=subtenant_id)
    return visible


def _global_first(rows: QuerySet) -> list:
    # A subtenant's own comes after the global one of its name, so it replaces it.
    return sorted(rows, key=lambda r: r.subtenant_id is not None)


def connection_list_visible(*, subtenant_id: UUID | None) -> list[Connection]:
    """The active connections the subtenant sees, the global ones first."""
    return _global_first(Connection.objects.filter(_visible(subtenant_id), is_active=True))


def route_list_visible(*, subtenant_id: UUID | None) -> list[Route]:
    """The active routes the subtenant sees, the global ones first."""
    return _global_first(Route.objects.filter(_visible(subtenant_id), is_active=True))


def connection_name_exists(*, subtenant: Subtenant | None, name: str) -> bool:
    """Whether the subtenant sees a stored connection of that name (active or not)."""
    visible = _visible(subtenant.pk if subtenant is not None else None)
    return Connection.objects.filter(visible, name=name).exists()


def connection_names_visible(*, subtenant: Subtenant | None) -> set[str]:
    """The names of the stored connections the subtenant sees (active or not)."""
    names = set(Connection.objects.filter(subtenant__isnull=True).values_list("name", flat=True))
    if subtenant is not None:
        names |= set(Connection.objects.filter(subtenant=subtenant).values_list("name", flat=True))
    return names


def connection_list(*, subtenant: Subtenant | None) -> QuerySet[Connection]:
    """The connections of one scope only: the global ones, or a subtenant's own."""
    return Connection.objects.filter(subtenant=subtenant)


def connection_owned(*, subtenant: Subtenant | None, name: str) -> Connection:
    """A connection of the caller's own scope; any other is a 404."""
    found = connection_list(subtenant=subtenant).filter(name=name).first()
    if found is None:
        raise ResourceNotFoundError("Connection not found.", details={"name": name})
    return found


def route_list(*, subtenant: Subtenant | None) -> QuerySet[Route]:
    """The routes of one scope only: the global ones, or a subtenant's own."""
    return Route.objects.filter(subtenant=subtenant)


def route_owned(*, subtenant: Subtenant | None, name: str) -> Route:
    """A route of the caller's own scope; any other is a 404."""
    found = route_list(subtenant=subtenant).filter(name=name).first()
    if found is None:
        raise ResourceNotFoundError("Route not found.", details={"name": name})
    return found
