"""Which subtenant a request acts on: every API module asks here, in one of three ways.

- `named_subtenant`: the one the request names (its URL or body) and its key may reach;
  any other is a 404, so another tenant's existence is never revealed.
- `billed_subtenant`: who an LLM call is for: a subtenant key's own (or one it may
  reach, when named); an admin key must name one.
- `tool_scope`: whose tools a request addresses: a subtenant key's own; for an admin
  key the one it names (body or `?subtenant=`), or None for the global ones.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from rest_framework import serializers
from rest_framework.request import Request

from llmwrapper.api import principal, query_param
from tenants.models import Subtenant
from tenants.selectors import subtenant_access


def named_subtenant(request: Request, subtenant_id: Any) -> Subtenant:
    return subtenant_access(key=principal(request).key, subtenant_id=subtenant_id)


def billed_subtenant(request: Request, subtenant_id: Any = None) -> Subtenant:
    caller = principal(request)
    if not subtenant_id:
        if caller.is_admin:
            raise serializers.ValidationError({"subtenant": ["Required with an admin key."]})
        return caller.subtenant  # type: ignore[return-value]
    return subtenant_access(key=caller.key, subtenant_id=subtenant_id)


async def abilled_subtenant(request: Request, subtenant_id: Any = None) -> Subtenant:
    """`billed_subtenant` from async code: a subtenant key naming none is its own, with
    nothing to look up (the hot path of every LLM call)."""
    caller = principal(request)
    if not subtenant_id and not caller.is_admin:
        return caller.subtenant  # type: ignore[return-value]
    return await sync_to_async(billed_subtenant)(request, subtenant_id)


def tool_scope(request: Request, subtenant_id: Any = None) -> Subtenant | None:
    caller = principal(request)
    if not caller.is_admin:
        if subtenant_id and str(subtenant_id) != str(caller.key.subtenant_id):
            subtenant_access(key=caller.key, subtenant_id=subtenant_id)  # raises 404
        return caller.subtenant
    subtenant_id = subtenant_id or query_param(request, "subtenant", serializers.UUIDField())
    return subtenant_access(key=caller.key, subtenant_id=subtenant_id) if subtenant_id else None
