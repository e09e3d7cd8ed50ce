"""MCP tools and tool results as plain values, and the names models see for them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import mcp_types

# Vendors accept tool names matching ^[a-zA-Z0-9_-]{1,64}$.
QUALIFIED_NAME_SEPARATOR = "__"
_UNSAFE_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_TOOL_NAME = 64


def qualified_tool_name(server: str, tool: str) -> str:
    """``<server>__<tool>``, made safe for the vendors' tool-name rule.

    Characters outside ``[a-zA-Z0-9_-]`` become ``_``; a name over 64 characters is cut
    and ends in a hash of the full name, so it stays unique. Do not parse it back:
    keep the ``McpTool`` (it has ``server`` and ``name``) to route a model's call.
    """
    raw = f"{server}{QUALIFIED_NAME_SEPARATOR}{tool}"
    safe = _UNSAFE_CHARS.sub("_", raw)
    if len(safe) > _MAX_TOOL_NAME:
        safe = f"{safe[: _MAX_TOOL_NAME - 9]}_{_short_hash(raw)}"
    return safe


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class McpTool:
    server: str
    name: str  # the server's own name, for call_tool
    qualified_name: str  # the name to show a model
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class McpToolResult:
    content: list[dict[str, Any]]  # MCP content blocks as plain JSON (text, image, ...)
    is_error: bool
    structured: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return "\n".join(b["text"] for b in self.content if b.get("type") == "text")


def to_tools(server: str, tools: list[mcp_types.Tool]) -> list[McpTool]:
    result: list[McpTool] = []
    seen: set[str] = set()
    for tool in tools:
        qualified = qualified_tool_name(server, tool.name)
        if qualified in seen:  # "a.b" and "a_b" sanitize alike
            qualified = f"{qualified[: _MAX_TOOL_NAME - 9]}_{_short_hash(tool.name)}"
        seen.add(qualified)
        result.append(
            McpTool(
                server=server,
                name=tool.name,
                qualified_name=qualified,
                description=tool.description or "",
                input_schema=tool.input_schema or {"type": "object", "properties": {}},
            )
        )
    return result


def to_result(result: mcp_types.CallToolResult) -> McpToolResult:
    structured = result.structured_content
    if structured is not None and not isinstance(structured, dict):
        # 2026-07-28 allows any JSON value here; keep the documented dict shape.
        structured = {"result": structured}
    return McpToolResult(
        content=[
            block.model_dump(mode="json", by_alias=True, exclude_none=True)
            for block in result.content
        ],
        is_error=bool(result.is_error),
        structured=structured,
    )
