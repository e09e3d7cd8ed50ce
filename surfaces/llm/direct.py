"""The direct LLM API's format of a turn: SSE events, or one collected body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pipeline
from providers.core import wire


async def direct_events(turn: pipeline.Turn) -> AsyncIterator[tuple[str, dict]]:
    """`message.created`, `delta`, `tool_call`, `tool_result`, then exactly one
    `message.completed` or `error`."""
    async with aclosing(turn.events(streaming=True)) as events:
        async for event in events:
            if isinstance(event, pipeline.Delta):
                yield "delta", {"text": event.text}
            elif isinstance(event, pipeline.ToolCalled):
                yield "tool_call", wire.tool_call_to_api(event.call)
            elif isinstance(event, pipeline.ToolRan):
                yield "tool_result", wire.tool_result_to_api(event.result)
            elif isinstance(event, pipeline.Started):
                target = event.target
                body = {"id": event.turn_id, "provider": target.provider, "model": target.model}
                yield "message.created", body
            elif isinstance(event, pipeline.Completed):
                yield "message.completed", _completed(event)
            elif isinstance(event, pipeline.Failed):
                yield "error", event.error.body


async def direct_body(turn: pipeline.Turn) -> dict[str, Any]:
    """The turn collected into one response body; a failure raises its exception."""
    tool_calls: list[dict] = []
    tool_results: list[dict] = []
    completed: dict[str, Any] = {}
    async with aclosing(turn.events(streaming=False)) as events:
        async for event in events:
            if isinstance(event, pipeline.ToolCalled):
                tool_calls.append(wire.tool_call_to_api(event.call))
            elif isinstance(event, pipeline.ToolRan):
                tool_results.append(wire.tool_result_to_api(event.result))
            elif isinstance(event, pipeline.Completed):
                completed = _completed(event)
            elif isinstance(event, pipeline.Failed):
                raise event.error.exc
    return {
        "id": completed["id"],
        "provider": completed["provider"],
        "model": completed["model"],
        "message": {
            "role": "assistant",
            "content": completed["content"],
            "tool_calls": completed["tool_calls"],
        },
        "tool_calls": tool_calls,
        "tool_results": tool_results,
        "finish_reason": completed["finish_reason"],
        "usage": completed["usage"],
        "rounds": completed["rounds"],
    }


def _completed(event: pipeline.Completed) -> dict[str, Any]:
    return {"id": event.turn_id, "content": event.text, **wire.completion_to_api(event.turn)}
