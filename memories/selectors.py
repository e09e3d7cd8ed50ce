"""Reads of memories, scoped by subtenant."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from llmwrapper import rows
from llmwrapper.errors import ResourceNotFoundError
from memories.models import Memory
from tenants.models import Subtenant


def memory_list(*, subtenant: Subtenant) -> QuerySet[Memory]:
    return Memory.objects.filter(subtenant=subtenant).order_by("key")


def memory_context(*, subtenant: Subtenant, keys: Iterable[str] | None = None) -> list[Memory]:
    """The memories a chat send puts in its context (every send reads them: plain SQL,
    see llmwrapper.rows), ordered by key."""
    where, params = '"subtenant_id" = %s', [rows.value(Memory, "subtenant", subtenant.pk)]
    if keys is not None:
        keys = list(keys)
        if not keys:
            return []
        where += ' AND "key" IN (' + ", ".join(["%s"] * len(keys)) + ")"
        params += keys
    return rows.instances(Memory, where, params, tail='ORDER BY "key"')


def memory_get(*, subtenant: Subtenant, key: str) -> Memory:
    memory = Memory.objects.filter(subtenant=subtenant, key=key).first()
    if memory is None:
        raise ResourceNotFoundError(f"Memory '{key}' not found.", details={"key": key})
    return memory
