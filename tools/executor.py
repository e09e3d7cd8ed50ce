"""The server-side tools offered to a model in one turn, and how each call is run.

The tools of every registered source (`tools.registry`), each source's list cached for
a few seconds. A failing tool becomes an error result the model can read, never a
failed request.
"""

from __future__ import annotations

from collections.abc import Sequence

from asgiref.sync import sync_to_async

from llmwrapper.observability.genai import observe_tool_call
from providers.core.loop import ToolOutcome
from providers.core.types import ToolCall, ToolSpec
from tenants.models import Subtenant
from tools import registry
from tools.sources import SourceTool, ToolSource, catalog_cache

Catalog = dict[str, tuple[ToolSource, SourceTool]]


class ServerTools:
    def __init__(self, entries: Catalog) -> None:
        self._entries = entries

    def specs(self) -> Sequence[ToolSpec]:
        return [ToolSpec(t.name, t.description, t.parameters) for _, t in self._entries.values()]

    def handles(self, name: str) -> bool:
        return name in self._entries

    async def execute(self, call: ToolCall) -> ToolOutcome:
        source, tool = self._entries[call.name]
        with observe_tool_call(name=call.name, call_id=call.id, kind=source.name) as observed:
            if "_raw_arguments" in call.arguments:
                observed.failed("invalid_arguments")
                return ToolOutcome("The arguments were not valid JSON.", is_error=True)
            outcome = await source.call(tool, call.arguments)
            if outcome.is_error:
                observed.failed(outcome.failure or "tool_error")
            return ToolOutcome(outcome.content, is_error=outcome.is_error, parts=outcome.parts)


def _cached(subtenant: Subtenant) -> list[tuple[ToolSource, Sequence[SourceTool] | None]]:
    return [
        (source, catalog_cache.get(source=source.name, subtenant_id=subtenant.pk))
        for source in registry.SOURCES
    ]


def _load(
    subtenant: Subtenant, parts: list[tuple[ToolSource, Sequence[SourceTool] | None]]
) -> list[tuple[ToolSource, Sequence[SourceTool] | None]]:
    loaded = []
    for source, tools in parts:
        if tools is None:
            tools = source.list_tools(subtenant=subtenant)
            catalog_cache.put(source=source.name, subtenant_id=subtenant.pk, tools=tools)
        loaded.append((source, tools))
    return loaded


async def executor_for(*, subtenant: Subtenant, selection: list[str] | None) -> ServerTools | None:
    parts = _cached(subtenant)
    if any(tools is None for _, tools in parts):
        # Only then a thread hop: a catalog at hand costs none.
        parts = await sync_to_async(_load)(subtenant, parts)
    entries: Catalog = {}
    for source, tools in parts:
        for tool in tools or ():
            entries[tool.name] = (source, tool)
    if selection is not None:
        wanted = set(selection)
        entries = {name: entry for name, entry in entries.items() if name in wanted}
    return ServerTools(entries) if entries else None
