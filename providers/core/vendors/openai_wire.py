"""OpenAI's Chat Completions wire format, as plain dicts: how a request's messages and
tool choice are written, and how answers are read (the SSE stream's chunks, tool calls,
finish reasons, usage and error bodies). Shared by the streaming and non-streaming calls
of `OpenAIProvider`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from providers.core.content import part_to_openai
from providers.core.tooling import parse_arguments
from providers.core.types import FinishReason, Message, ToolCall, ToolCallComplete, Usage

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class InStreamError(Exception):
    """An error object sent inside an otherwise successful stream."""

    def __init__(self, body: object) -> None:
        super().__init__("error event in the stream")
        self.body = body


async def stream_chunks(response: Any) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of an SSE stream's `data:` lines, up to `[DONE]` (`response`:
    anything with `aiter_lines`, ours or httpx's)."""
    lines = response.aiter_lines()
    async for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            await _body_end(lines)
            return
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError("a stream chunk is not an object")
        if "error" in chunk and not chunk.get("choices"):
            raise InStreamError(chunk)
        yield chunk


async def _body_end(lines: AsyncIterator[str]) -> None:
    """Read what follows `[DONE]` (normally only the body's end, already on its way), so
    the connection can serve the next call; a server that keeps the body open is left
    after a second."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_BODY_END_S):
            async for _ in lines:
                pass


_BODY_END_S = 1.0


def message_to_openai(message: Message) -> dict[str, Any]:
    """A message as a Chat Completions `messages` entry."""
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.parts:
        out["content"] = [part_to_openai(p) for p in message.parts]
    if message.role == "assistant" and message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.name:
        out["name"] = message.name
    return out


def tool_choice_to_openai(tool_choice: str | dict) -> str | dict:
    """`auto`, `none`, `required` (or `any`), a tool's name, or a tool-choice object."""
    if isinstance(tool_choice, dict):
        if "function" in tool_choice:
            return tool_choice
        return {"type": "function", "function": {"name": tool_choice["name"]}}
    if tool_choice in ("auto", "none", "required"):
        return tool_choice
    if tool_choice == "any":
        return "required"
    return {"type": "function", "function": {"name": tool_choice}}


def completed_calls(calls: dict[int, dict[str, Any]]) -> list[ToolCallComplete]:
    """The tool calls a stream sent in pieces (index -> id, name, argument fragments)."""
    return [
        ToolCallComplete(
            ToolCall(
                id=state["id"] or f"call_{index}",
                name=state["name"] or "",
                arguments=parse_arguments("".join(state["args"])),
            )
        )
        for index, state in sorted(calls.items())
    ]


def finish_from(reason: str | None, calls_seen: bool) -> FinishReason:
    """The finish reason of an answer's `finish_reason`."""
    # Some compatible servers answer "stop" even when the model asked for tools.
    if calls_seen:
        return "tool_calls"
    return _FINISH.get(reason or "stop", "stop")


def usage_from(usage: Any) -> Usage:
    """The token counts of an answer's `usage` object (zero without one)."""
    if not isinstance(usage, dict):
        return Usage()
    return Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)


def vendor_message(body: object) -> str | None:
    """The message of a vendor's error body, if it holds one."""
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
        error = body.get("error")
        if isinstance(error, dict):
            return vendor_message(error)
        if isinstance(error, str):
            return error
    return None
