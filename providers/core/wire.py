"""Translation between the API's JSON and the normalized types, both ways.

Shared by the direct LLM API and chats, so a tool call or a usage block looks the same
in every response and stream.
"""

from __future__ import annotations

import json
from typing import Any

from providers.core.content import ContentLimits, parse_content, part_to_openai
from providers.core.loop import ToolResult, TurnCompleted
from providers.core.tooling import parse_arguments
from providers.core.types import GenerationParams, Message, ToolCall, Usage

PARAM_NAMES = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "response_format",
    "presence_penalty",
    "frequency_penalty",
    "seed",
)


def tool_call_to_api(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


def tool_call_from_api(data: dict[str, Any]) -> ToolCall:
    """Accept our shape `{id, name, arguments}` and OpenAI's `{id, function: {name, arguments}}`."""
    function = data.get("function")
    if isinstance(function, dict):
        return ToolCall(
            str(data["id"]), function["name"], parse_arguments(function.get("arguments"))
        )
    return ToolCall(str(data["id"]), data["name"], parse_arguments(data.get("arguments")))


def usage_to_api(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def message_from_api(
    data: dict[str, Any], *, where: str = "content", limits: ContentLimits
) -> Message:
    """One message as the API takes it; images and documents checked (ContentError)."""
    text, parts = parse_content(data.get("content"), where=where, role=data["role"], limits=limits)
    return Message(
        role=data["role"],
        content=text,
        tool_calls=tuple(tool_call_from_api(c) for c in data.get("tool_calls") or ()),
        tool_call_id=data.get("tool_call_id") or None,
        name=data.get("name") or None,
        parts=parts,
    )


def messages_from_api(items: list[dict[str, Any]], *, limits: ContentLimits) -> tuple[Message, ...]:
    """A request's `messages`; a refused part is named as `messages[i].content[j]`."""
    return tuple(
        message_from_api(m, where=f"messages[{i}].content", limits=limits)
        for i, m in enumerate(items)
    )


def content_to_api(message: Message) -> str | list[dict[str, Any]]:
    """A message's content as the API writes it: its text, or its parts."""
    if message.parts:
        return [part_to_openai(p) for p in message.parts]
    return message.content


def params_from(data: dict[str, Any], *defaults: dict[str, Any]) -> GenerationParams:
    """Generation params: the request's own, else each level of defaults in turn."""
    merged: dict[str, Any] = {}
    for level in (*reversed(defaults), data):
        merged.update({k: v for k, v in level.items() if k in PARAM_NAMES and v is not None})
    stop = merged.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    extra = {k: merged[k] for k in ("presence_penalty", "frequency_penalty", "seed") if k in merged}
    return GenerationParams(
        temperature=merged.get("temperature"),
        top_p=merged.get("top_p"),
        max_tokens=merged.get("max_tokens"),
        stop=tuple(stop) if stop else None,
        response_format=merged.get("response_format"),
        extra=extra,
    )


def tool_result_to_api(result: ToolResult) -> dict[str, Any]:
    """A server-side tool's result; `parts` (OpenAI's format, its text first) only when
    the tool returned images or documents."""
    out: dict[str, Any] = {
        "tool_call_id": result.call.id,
        "name": result.call.name,
        "content": result.outcome.content,
        "is_error": result.outcome.is_error,
        "latency_ms": result.latency_ms,
    }
    if result.outcome.parts:
        out["parts"] = [part_to_openai(p) for p in result.outcome.parts]
    return out


def completion_to_api(turn: TurnCompleted) -> dict[str, Any]:
    return {
        "provider": turn.provider,
        "model": turn.model,
        "finish_reason": turn.finish_reason,
        "usage": usage_to_api(turn.usage),
        "tool_calls": [tool_call_to_api(c) for c in turn.pending_tool_calls],
        "rounds": turn.rounds,
        "round_limit_reached": turn.round_limit_reached,
    }


def dumps_arguments(arguments: dict) -> str:
    return json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
