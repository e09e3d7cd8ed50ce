"""Helpers for tool (function) definitions shared by the adapters and the APIs."""

from __future__ import annotations

import json
from typing import Any

from providers.core.types import ToolSpec

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def _spec_from_function(function: dict) -> ToolSpec:
    return ToolSpec(
        name=function["name"],
        description=function.get("description") or "",
        parameters=function.get("parameters") or dict(_EMPTY_SCHEMA),
    )


def tool_specs_from_openai(
    tools: list[dict] | None, functions: list[dict] | None = None
) -> tuple[ToolSpec, ...]:
    """Accept OpenAI `tools: [{"type": "function", "function": {...}}]` and the legacy
    `functions: [{...}]` request fields, in that order."""
    specs: list[ToolSpec] = []
    for tool in tools or ():
        if tool.get("type", "function") != "function":
            raise ValueError(f"Unsupported tool type: {tool.get('type')!r}")
        specs.append(_spec_from_function(tool["function"]))
    specs.extend(_spec_from_function(function) for function in functions or ())
    return tuple(specs)


def parse_arguments(raw: str | dict | None) -> dict:
    """Tool arguments as a dict.

    Models occasionally emit invalid JSON; the raw text is kept under `_raw_arguments` so
    the tool layer can answer the model with a validation error instead of crashing here.
    """
    if isinstance(raw, dict):
        return raw
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_raw_arguments": raw}
    return value if isinstance(value, dict) else {"_raw_arguments": raw}


def forced_tool_name(tool_choice: str | dict | None) -> str | None:
    """The tool a `tool_choice` forces, if it names one."""
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        if isinstance(function, dict):
            return function.get("name")
        return tool_choice.get("name")
    if isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "required", "any"):
        return tool_choice
    return None


def tool_choice_mode(tool_choice: str | dict | None) -> str | None:
    """Normalize to "auto" | "none" | "required" | "tool" (a forced tool) | None."""
    if tool_choice is None:
        return None
    if forced_tool_name(tool_choice) is not None:
        return "tool"
    if isinstance(tool_choice, dict):
        kind = tool_choice.get("type")
        return {"any": "required"}.get(kind, kind) if isinstance(kind, str) else None
    return "required" if tool_choice == "any" else tool_choice
