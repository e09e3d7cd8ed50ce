"""A Responses request as one turn of the pipeline.

With `store` (the default) the turn belongs to a chat of the key's subtenant: the chat
of `previous_response_id` (its history comes first, then the new input), the chat the
`X-Chat-ID` header names (the input is the client's own conversation; its newest
message is stored), or a new chat holding the whole input. Without `store` nothing is
kept: a `previous_response_id` is then read, not added to.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pipeline
from llmwrapper import db
from providers import gateway
from providers.core.types import Message
from surfaces.openai_chat import OpenAIError
from surfaces.responses import store, wire
from tenants.models import ApiKey, Subtenant

TITLE_LENGTH = 60


@dataclass
class Started:
    turn: pipeline.Turn
    response: dict[str, Any]  # the in_progress response object


async def start(
    fields: dict[str, Any],
    *,
    subtenant: Subtenant,
    api_key: ApiKey | None,
    chat_header: str | None,
) -> Started:
    messages = wire.messages_from_input(
        fields["input"], instructions=fields.get("instructions"), limits=gateway.content_limits()
    )
    previous = fields.get("previous_response_id")
    chat: pipeline.ChatExchange | None = None
    if fields["store"]:
        response_id, chat = await _stored_turn(subtenant, messages, previous, chat_header)
        chat = chat.with_metadata(request=_echo(fields))
    else:
        response_id = wire.new_id("resp")
        if previous:
            earlier = await db.run(store.history_of, subtenant, previous)
            system = [m for m in messages if m.role == "system"]
            messages = (*system, *earlier, *(m for m in messages if m.role != "system"))
    turn = await pipeline.start(
        pipeline.TurnSpec(
            subtenant=subtenant,
            api_key=api_key,
            source="responses",
            model=fields["model"],
            fallbacks=fields.get("fallbacks"),
            messages=messages,
            tools=wire.tools_from_request(fields.get("tools")),
            tool_choice=fields.get("tool_choice"),
            params=_params(fields),
            server_tools=False,
            chat=chat,
        )
    )
    response = wire.response_object(response_id, fields, created_at=int(time.time()))
    return Started(turn, response)


async def _stored_turn(
    subtenant: Subtenant,
    messages: tuple[Message, ...],
    previous: str | None,
    chat_header: str | None,
) -> tuple[str, pipeline.ChatExchange]:
    said = tuple(m for m in messages if m.role != "system")
    if previous:
        chat = await db.run(store.continued_chat, subtenant, previous)
        if chat_header and chat_header != str(chat.pk):
            raise OpenAIError(
                400,
                "X-Chat-ID names another chat than the one previous_response_id continues.",
                "invalid_request_error",
                param="previous_response_id",
            )
        response_id = store.stored_id(chat.pk)
        exchange = pipeline.ChatExchange(str(chat.pk), incoming=said, continues=True)
    elif chat_header:
        try:
            response_id = store.stored_id(uuid.UUID(chat_header))
        except ValueError:
            raise OpenAIError(404, "Chat not found.", "invalid_request_error") from None
        exchange = pipeline.ChatExchange(chat_header)
    else:
        chat_id = uuid.uuid4()
        response_id = store.stored_id(chat_id)
        title = next((m.content for m in said if m.role == "user" and m.content), "")
        exchange = pipeline.ChatExchange(
            str(chat_id),
            incoming=said,
            create={"title": title[:TITLE_LENGTH], "metadata": {"source": store.SOURCE}},
        )
    return response_id, exchange.with_metadata(source=store.SOURCE, response_id=response_id)


def _echo(fields: dict[str, Any]) -> dict[str, Any]:
    """What a stored response shows of its request when read back."""
    keys = ("model", "instructions", "previous_response_id", "temperature", "top_p")
    keys += ("max_output_tokens", "metadata", "tool_choice")
    return {k: fields[k] for k in keys if fields.get(k) is not None}


def _params(fields: dict[str, Any]) -> dict[str, Any]:
    params = {k: fields[k] for k in ("temperature", "top_p") if fields.get(k) is not None}
    if fields.get("max_output_tokens") is not None:
        params["max_tokens"] = fields["max_output_tokens"]
    fmt = wire.response_format(fields.get("text"))
    if fmt is not None:
        params["response_format"] = fmt
    return params
