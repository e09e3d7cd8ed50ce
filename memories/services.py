"""Writes of memories."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from llmwrapper.errors import ResourceConflictError
from memories.models import Memory
from memories.selectors import memory_get
from tenants.models import Subtenant


def memory_create(*, subtenant: Subtenant, key: str, value: Any, description: str = "") -> Memory:
    """Create a memory; an existing key is a conflict (409), decided by the unique constraint."""
    try:
        with transaction.atomic():
            return Memory.objects.create(
                subtenant=subtenant, key=key, value=value, description=description
            )
    except IntegrityError as exc:
        raise ResourceConflictError(
            f"Memory '{key}' already exists; use PUT to change it.", details={"key": key}
        ) from exc


def memory_update(*, subtenant: Subtenant, key: str, **fields: Any) -> Memory:
    memory = memory_get(subtenant=subtenant, key=key)
    for field, value in fields.items():
        setattr(memory, field, value)
    memory.save(update_fields=[*fields, "updated_at"])
    return memory


def memory_delete(*, subtenant: Subtenant, key: str) -> None:
    memory_get(subtenant=subtenant, key=key).delete()
