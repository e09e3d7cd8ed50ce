"""Stored responses are chat turns: a response's id names its chat, and the assistant
messages of the turn carry the id in their metadata (`response_id`). Reading one back,
continuing from one (`previous_response_id`) and deleting one all start here; every read
is scoped to the caller's subtenant, so another tenant's id is simply not found.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from chats import history, selectors
from chats.models import Chat, Message
from providers.core import types
from providers.core.types import ToolCall
from providers.core.wire import tool_call_from_api
from surfaces.openai_chat import OpenAIError
from surfaces.responses import wire
from tenants.models import Subtenant

SOURCE = "responses"
_STATUS = {
    Message.Status.COMPLETE: "completed",
    Message.Status.STREAMING: "in_progress",
    Message.Status.INTERRUPTED: "incomplete",
    Message.Status.ERROR: "failed",
}


def stored_id(chat_id: uuid.UUID) -> str:
    """A new response id in this chat: `resp_` + the chat's id + 16 random hex digits."""
    return f"resp_{chat_id.hex}{secrets.token_hex(8)}"


def not_found(response_id: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"No response found with id '{response_id}'.",
        "invalid_request_error",
        param="response_id",
    )


def _chat_id(response_id: str) -> uuid.UUID | None:
    body = response_id.removeprefix("resp_")
    if len(body) != 48 or not response_id.startswith("resp_"):
        return None
    try:
        return uuid.UUID(hex=body[:32])
    except ValueError:
        return None


def turn_rows(subtenant: Subtenant, response_id: str) -> tuple[Chat, list[Message]]:
    """The chat and the messages (assistant and tool) of a stored response; 404 if the
    subtenant has none of that id."""
    chat_id = _chat_id(response_id)
    chat = selectors.chat_get(subtenant=subtenant, chat_id=chat_id) if chat_id else None
    if chat is None:
        raise not_found(response_id)
    answers = selectors.message_list_of_response(chat=chat, response_id=response_id)
    if not answers:
        raise not_found(response_id)
    first, last = answers[0].sequence, answers[-1].sequence
    rows = selectors.message_range(chat=chat, first=first, last=last)
    return chat, [m for m in rows if m.role == "tool" or m in answers]


def continued_chat(subtenant: Subtenant, response_id: str) -> Chat:
    """The chat a `previous_response_id` continues."""
    chat, _ = turn_rows(subtenant, response_id)
    return chat


def history_of(subtenant: Subtenant, response_id: str) -> list[types.Message]:
    """The conversation up to and including a stored response (for `store: false`
    continuations, which read it without adding to it)."""
    chat, rows = turn_rows(subtenant, response_id)
    return history.load_recent(chat=chat, before_sequence=rows[-1].sequence + 1)


def read(subtenant: Subtenant, response_id: str) -> dict[str, Any]:
    """A stored response as `GET /v1/responses/{id}` answers it."""
    _, rows = turn_rows(subtenant, response_id)
    answers = [m for m in rows if m.role == "assistant"]
    meta = answers[0].metadata
    answered = {m.tool_call_id for m in rows if m.role == "tool"}
    output: list[dict[str, Any]] = []
    for message in answers:
        if message.content:
            output.append(wire.message_item(wire.message_item_id(message), message.content))
        calls: list[ToolCall] = [
            tool_call_from_api(c) for c in message.tool_calls if c["id"] not in answered
        ]
        output += [wire.function_call_item(wire.call_item_id(c), c) for c in calls]
    last = answers[-1]
    request = {"model": meta.get("model", last.model), **meta.get("request", {})}
    response = wire.response_object(
        response_id, request, created_at=int(answers[0].created_at.timestamp())
    )
    status = _STATUS.get(last.status, "completed")
    if status == "completed" and last.finish_reason == "length":
        status = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    input_tokens = sum(m.input_tokens or 0 for m in answers)
    output_tokens = sum(m.output_tokens or 0 for m in answers)
    response.update(
        status=status,
        output=output,
        usage={
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    )
    if last.status == Message.Status.ERROR:
        response["error"] = {"code": "server_error", "message": last.error}
    return response


def delete(subtenant: Subtenant, response_id: str) -> dict[str, Any]:
    """Delete a stored response's messages (what was sent before it stays in the chat)."""
    _, rows = turn_rows(subtenant, response_id)
    Message.objects.filter(pk__in=[m.pk for m in rows]).delete()
    return {"id": response_id, "object": "response", "deleted": True}
