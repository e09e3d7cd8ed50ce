"""The server-side tools offered to a model in one turn, and how each call is run.

Built-ins, the subtenant's registered functions and the tools of its MCP servers (as
listed at their last check, so no server is contacted to build a request). A failing
tool becomes an error result the model can read, never a failed request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from llmwrapper.observability.genai import observe_tool_call
from providers.loop import ToolOutcome
from providers.types import ToolCall, ToolSpec
from tenants.models import Subtenant
from tools import runtime, selectors
from tools.builtins import BUILTINS
from tools.errors import ToolError
from tools.mcp.errors import McpError
from tools.services import result_text

Runner = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class _Entry:
    spec: ToolSpec
    run: Runner
    is_mcp: bool = False
    kind: str = "function"  # builtin, function or mcp: a bounded label for metrics


class ServerTools:
    def __init__(self, entries: dict[str, _Entry]) -> None:
        self._entries = entries

    def specs(self) -> Sequence[ToolSpec]:
        return [entry.spec for entry in self._entries.values()]

    def handles(self, name: str) -> bool:
        return name in self._entries

    async def execute(self, call: ToolCall) -> ToolOutcome:
        entry = self._entries[call.name]
        with observe_tool_call(name=call.name, call_id=call.id, kind=entry.kind) as observed:
            if "_raw_arguments" in call.arguments:
                observed.failed("invalid_arguments")
                return ToolOutcome("The arguments were not valid JSON.", is_error=True)
            try:
                value = await entry.run(call.arguments)
            except ToolError as exc:
                observed.failed(exc.type)
                return ToolOutcome(f"{exc.type}: {exc.message}", is_error=True)
            except McpError as exc:
                observed.failed(exc.type)
                return ToolOutcome(f"{exc.type}: {exc.message}", is_error=True)
            if entry.is_mcp:
                text = value.text or json.dumps(value.structured or value.content, default=str)
                if value.is_error:
                    observed.failed("tool_error")
                return ToolOutcome(text, is_error=value.is_error)
            return ToolOutcome(result_text(value))


# Each subtenant's catalog, kept for TOOL_CATALOG_CACHE_SECONDS so that offering tools
# costs no query per request. Registering or removing a tool in this process empties
# it at once; other processes see the change within the cache time.
_cache: dict[object, tuple[float, dict[str, _Entry]]] = {}


def catalog_changed() -> None:
    _cache.clear()


def _catalog(subtenant: Subtenant) -> dict[str, _Entry]:
    ttl = settings.TOOL_CATALOG_CACHE_SECONDS
    cached = _cache.get(subtenant.pk)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    entries = _load_catalog(subtenant)
    if ttl > 0:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[subtenant.pk] = (now + ttl, entries)
    return entries


def _load_catalog(subtenant: Subtenant) -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {}
    for name, tool in BUILTINS.items():
        entries[name] = _Entry(
            ToolSpec(name, tool.description, tool.parameters),
            lambda args, tool=tool: runtime.run_builtin(tool, args),
            kind="builtin",
        )
    for function in selectors.function_list(subtenant=subtenant):
        entries[function.name] = _Entry(
            ToolSpec(function.name, function.description, function.parameters),
            lambda args, function=function: runtime.run_function(function, args),
        )
    for server in selectors.mcp_server_list(subtenant=subtenant):
        for tool in server.tools:
            entries[tool["qualified_name"]] = _Entry(
                ToolSpec(
                    tool["qualified_name"], tool.get("description") or "", tool["input_schema"]
                ),
                lambda args, server=server, name=tool["name"]: runtime.run_mcp_tool(
                    server, name, args
                ),
                is_mcp=True,
                kind="mcp",
            )
    return entries


async def executor_for(*, subtenant: Subtenant, selection: list[str] | None) -> ServerTools | None:
    cached = _cache.get(subtenant.pk)
    if cached is not None and cached[0] > time.monotonic():
        entries = cached[1]  # no thread hop when the catalog is at hand
    else:
        entries = await sync_to_async(_catalog)(subtenant)
    if selection is not None:
        wanted = set(selection)
        entries = {name: entry for name, entry in entries.items() if name in wanted}
    return ServerTools(entries) if entries else None
