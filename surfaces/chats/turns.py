"""Chat sends on the turn pipeline, for HTTP, SSE and WebSocket alike.

`send_spec` turns a validated send into the pipeline's `TurnSpec`; `chat_events`
formats the turn's events as the chat API's events (`message.created`, `delta`,
`tool_call`, `tool_result`, then one `message.completed` or `error`) and fans each out
to the chat's WebSocket viewers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pipeline
from chats import fanout
from chats.models import Chat, Message
from chats.serializers import message_to_api
from providers.core import wire
from providers.core.tooling import tool_specs_from_openai
from tenants.models import ApiKey


class ErrorBody(dict):
    """An `error` event's body; `status` and `headers` are what a sync send answers with."""

    def __init__(
        self, body: dict[str, Any], status: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(body)
        self.status = status
        self.headers = headers or {}


def serialize(message: Message) -> dict[str, Any]:
    return message_to_api(message)


def send_spec(*, chat: Chat, key: ApiKey, data: dict[str, Any]) -> pipeline.TurnSpec:
    """A validated send (SendMessageSerializer) as a turn; bad tools raise ValueError."""
    server_tools = data.get("server_tools")
    return pipeline.TurnSpec(
        subtenant=chat.subtenant,
        api_key=key,
        source="chat",
        provider=data.get("provider"),
        model=data.get("model"),
        fallbacks=data.get("fallbacks"),
        tools=tool_specs_from_openai(data.get("tools"), data.get("functions")),
        tool_choice=data.get("tool_choice"),
        params={k: data[k] for k in wire.PARAM_NAMES if k in data},
        server_tools=None if server_tools is True else server_tools,
        chat=pipeline.ChatSend(
            chat=chat,
            content=data.get("content"),
            parts=tuple(data.get("parts") or ()),
            tool_results=tuple(data.get("tool_results") or ()),
            include_memories=data.get("include_memories", False),
            memory_keys=data.get("memory_keys"),
        ),
    )


async def chat_events(
    turn: pipeline.Turn, *, origin: str | None = None, streaming: bool = True
) -> AsyncIterator[tuple[str, dict]]:
    """The turn's events in the chat API's format; `origin` tags the fan-out."""
    chat_id = turn.progress.chat.id  # type: ignore[union-attr]
    events = turn.events(streaming=streaming)
    async with aclosing(events):
        async for event in events:
            formatted = _format(str(chat_id), event)
            if formatted is not None:
                await fanout.publish(chat_id, *formatted, origin=origin)
                yield formatted


def _format(chat_id: str, event: pipeline.Event) -> tuple[str, dict] | None:
    if isinstance(event, pipeline.Delta):
        return "delta", {"message_id": str(event.message.id), "text": event.text}
    if isinstance(event, pipeline.ToolCalled):
        call = wire.tool_call_to_api(event.call)
        return "tool_call", {"message_id": str(event.message.id), **call}
    if isinstance(event, pipeline.ToolRan):
        result = wire.tool_result_to_api(event.result)
        return "tool_result", {"message_id": str(event.message.id), **result}
    if isinstance(event, pipeline.Started):
        return "message.created", {
            "chat_id": chat_id,
            "input_messages": [serialize(m) for m in event.input_messages],
            "message": serialize(event.message),
        }
    if isinstance(event, pipeline.AssistantOpened):
        return "message.created", {"chat_id": chat_id, "message": serialize(event.message)}
    if isinstance(event, pipeline.Completed):
        return "message.completed", completion(chat_id, event)
    if isinstance(event, pipeline.Failed):
        body = dict(event.error.body)
        if event.message is not None:
            body["details"] = {**(body.get("details") or {}), "message_id": str(event.message.id)}
        return "error", ErrorBody(body, event.error.status, event.error.headers)
    return None


def interrupted_completion(chat_id: str, event: pipeline.Interrupted) -> dict[str, Any]:
    """The `message.completed` of a send its client cancelled: what the chat now holds."""
    final = event.message
    return {
        "chat_id": chat_id,
        "status": Message.Status.INTERRUPTED.value,
        "message": serialize(final),
        "messages": [serialize(m) for m in event.messages],
        "input_messages": [serialize(m) for m in event.input_messages],
        "usage": wire.usage_to_api(event.usage),
        "finish_reason": final.finish_reason or None,
        "provider": final.provider,
        "model": final.model,
        "tool_calls": [],
        "round_limit_reached": False,
    }


def completion(chat_id: str, event: pipeline.Completed) -> dict[str, Any]:
    turn = event.turn
    return {
        "chat_id": chat_id,
        "message": serialize(event.message),
        "messages": [serialize(m) for m in event.messages],
        "input_messages": [serialize(m) for m in event.input_messages],
        "usage": wire.usage_to_api(turn.usage),
        "finish_reason": turn.finish_reason,
        "provider": turn.provider,
        "model": turn.model,
        "tool_calls": [wire.tool_call_to_api(c) for c in turn.pending_tool_calls],
        "round_limit_reached": turn.round_limit_reached,
    }
