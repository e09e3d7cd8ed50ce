"""What every source of server-side tools provides, and the cache of what they offer.

A source (built-ins, registered functions, MCP servers, ...) lists the tools a
subtenant can use, runs one of them, and says when its list changed. The executor and
the catalog cache work only through this protocol; `tools.registry` lists the sources.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings

from providers.core.content import Part
from tenants.models import Subtenant


@dataclass(frozen=True)
class SourceTool:
    name: str  # as offered to the model; unique within a subtenant's catalog
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object
    source: str  # the name of the source that offers it
    # What the source needs to run it (a stored row, a server and its own tool name).
    target: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class SourceOutcome:
    content: str  # the text the model reads
    is_error: bool = False
    failure: str | None = None  # a bounded error type for metrics when is_error
    # Images or documents for the model, `content` as a TextPart first (see
    # providers.core.loop.ToolOutcome); empty for text only.
    parts: tuple[Part, ...] = ()


class ToolSource(Protocol):
    """One kind of server-side tool. `name` is a short, bounded label (metrics use it)."""

    name: str

    def list_tools(self, *, subtenant: Subtenant) -> Sequence[SourceTool]:
        """The tools offered to `subtenant`, from stored data only (no remote calls)."""
        ...

    async def call(self, tool: SourceTool, arguments: dict[str, Any]) -> SourceOutcome:
        """Run `tool`; a failure of the tool is an error outcome, not an exception."""
        ...

    def invalidate(self, *, subtenant_id: object | None) -> None:
        """This source's tools changed for one subtenant (None: the global ones, which
        every subtenant sees): offer the new set from the next request on."""
        catalog_cache.invalidate(source=self.name, subtenant_id=subtenant_id)


def result_text(value: Any) -> str:
    """A tool result as the text a model reads."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


class CatalogCache:
    """Each source's tools per subtenant, kept for TOOL_CATALOG_CACHE_SECONDS so that
    offering tools costs no query per request. A change in this process drops the
    entries it affects at once; other processes see it within the cache time."""

    MAX_ENTRIES = 30_000

    def __init__(self) -> None:
        self._entries: dict[tuple[str, object], tuple[float, tuple[SourceTool, ...]]] = {}

    def get(self, *, source: str, subtenant_id: object) -> tuple[SourceTool, ...] | None:
        cached = self._entries.get((source, subtenant_id))
        if cached is None or cached[0] <= time.monotonic():
            return None
        return cached[1]

    def put(self, *, source: str, subtenant_id: object, tools: Sequence[SourceTool]) -> None:
        ttl = settings.TOOL_CATALOG_CACHE_SECONDS
        if ttl <= 0:
            return
        if len(self._entries) > self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[(source, subtenant_id)] = (time.monotonic() + ttl, tuple(tools))

    def invalidate(self, *, source: str, subtenant_id: object | None) -> None:
        for key in list(self._entries):
            if key[0] == source and (subtenant_id is None or key[1] == subtenant_id):
                self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


catalog_cache = CatalogCache()
