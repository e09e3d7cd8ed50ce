"""A turn's persistence in a chat.

`open_send` / `open_exchange` store what the client sent together with the assistant's
first row, written `streaming`, in one transaction, after the history was read: no
user message is ever stored without its answer, and a failure before leaves nothing.
`ChatProgress` then keeps the rows current as the turn runs, each write a short unit
that gives its connection back: the text so far every CHAT_PARTIAL_SAVE_SECONDS, each
round's final text, each tool result. A streaming row's lease is renewed by this
process's sweeper while the turn holds it, so a process that dies leaves rows that
another process's sweeper marks `interrupted` with the text saved so far.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, transaction

from chats import attachments, history, leases, selectors, services
from chats.models import Attachment, Chat, Message
from llmwrapper import db
from llmwrapper.errors import ResourceNotFoundError, ValidationFailedError
from pipeline.spec import ChatExchange, ChatSend
from providers import gateway
from providers.core import types, wire
from providers.core.loop import RoundCompleted, ToolResult
from tenants.models import Subtenant

logger = logging.getLogger(__name__)

# After a partial save failed (the database is away), the stream skips saves this long
# rather than wait on the pool at every interval.
_PARTIAL_SAVE_BACKOFF = 30.0


@dataclass
class Opening:
    """What a chat turn starts from."""

    chat: Chat
    messages: tuple[types.Message, ...]  # the conversation for the model
    input_messages: list[Message]
    placeholder: Message
    param_defaults: dict[str, Any]
    row_metadata: dict[str, Any]


def _streaming_assistant(target: gateway.Target, metadata: dict[str, Any]) -> dict[str, Any]:
    row = {
        "role": Message.Role.ASSISTANT,
        "status": Message.Status.STREAMING,
        "provider": target.provider,
        "model": target.model,
    }
    return {**row, "metadata": dict(metadata)} if metadata else row


def open_send(send: ChatSend, target: gateway.Target) -> Opening:
    """Store the client's message (or tool results) and the first assistant row, and
    build the conversation from the chat's history (runs in a `db.run` unit)."""
    chat = send.chat
    incoming, files = _incoming_rows(chat, send)
    system = history.system_context(
        chat=chat, include_memories=send.include_memories, memory_keys=send.memory_keys
    )
    recent = history.load_recent(chat=chat)
    *stored, assistant = services.messages_append(
        chat=chat, messages=[*incoming, _streaming_assistant(target, {})], attachments=files
    )
    # The message just stored goes to the model with the bytes in hand, not read back.
    recent.extend(
        types.Message("user", m.content, parts=send.parts) if m.parts else history.to_normalized(m)
        for m in stored
    )
    recent = recent[-settings.CHAT_HISTORY_MAX_MESSAGES :]
    messages = history.build_messages(recent=recent, system=system)
    return Opening(chat, messages, stored, assistant, chat.params, {})


def open_exchange(
    exchange: ChatExchange,
    *,
    subtenant: Subtenant,
    messages: tuple[types.Message, ...],
    target: gateway.Target,
) -> Opening:
    """Store what the request sent (see `ChatExchange`) and the first assistant row in
    the chat it names, created first when asked; the conversation is the client's own,
    or the chat's history followed by the request's messages when it `continues`."""
    if exchange.create is not None:
        chat = Chat(pk=exchange.chat_id, subtenant=subtenant, **exchange.create)
    else:
        chat = _exchange_chat(subtenant, exchange.chat_id)
    incoming = exchange.incoming
    if incoming is None:
        last = messages[-1] if messages else None
        incoming = (last,) if last is not None and last.role in ("user", "tool") else ()
    rows: list[dict[str, Any]] = []
    files: list[Attachment] = []
    for message in incoming:
        row = _exchange_row(message)
        if message.parts:  # files first; the rows follow in one transaction
            row["parts"], written = attachments.store(chat=chat, parts=message.parts)
            files += written
        rows.append(row)
    if exchange.continues:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        recent = [*history.load_recent(chat=chat), *(m for m in messages if m.role != "system")]
        messages = history.build_messages(recent=recent, system=system)
    metadata = dict(exchange.metadata)
    with transaction.atomic():
        if exchange.create is not None:
            chat.save(force_insert=True)
        *stored, assistant = services.messages_append(
            chat=chat, messages=[*rows, _streaming_assistant(target, metadata)], attachments=files
        )
    return Opening(chat, messages, stored, assistant, {}, metadata)


def _exchange_row(message: types.Message) -> dict[str, Any]:
    row: dict[str, Any] = {
        "role": message.role,
        "content": message.content,
        "tool_call_id": message.tool_call_id or "",
        "name": message.name or "",
    }
    if message.tool_calls:
        row["tool_calls"] = [wire.tool_call_to_api(c) for c in message.tool_calls]
    return row


def _exchange_chat(subtenant: Subtenant, chat_id: str) -> Chat:
    chat = selectors.chat_get(subtenant=subtenant, chat_id=chat_id)
    if chat is None:
        raise ResourceNotFoundError("Chat not found.", details={"id": chat_id})
    return chat


def _incoming_rows(chat: Chat, send: ChatSend) -> tuple[list[dict[str, Any]], list[Attachment]]:
    """The rows of what the client sent, and the attachments of its images and
    documents, whose files are written here: before the rows' transaction, so a file
    may outlive a transaction that failed (named by its bytes, it is reused)."""
    rows: list[dict[str, Any]] = []
    files: list[Attachment] = []
    if send.tool_results:
        pending = selectors.message_pending_tool_calls(chat=chat)
        for index, result in enumerate(send.tool_results):
            call = pending.pop(result["tool_call_id"], None)
            if call is None:
                raise ValidationFailedError(
                    "Invalid request: see details.",
                    details={
                        "tool_results": {
                            str(index): ["No pending tool call with this tool_call_id."]
                        }
                    },
                )
            rows.append(
                {
                    "role": Message.Role.TOOL,
                    "content": result["content"],
                    "tool_call_id": call["id"],
                    "name": call["name"],
                    "metadata": {"is_error": bool(result.get("is_error")), "source": "client"},
                }
            )
    if send.parts:
        stored, files = attachments.store(chat=chat, parts=send.parts)
        rows.append({"role": Message.Role.USER, "content": send.content or "", "parts": stored})
    elif send.content:
        rows.append({"role": Message.Role.USER, "content": send.content})
    return rows, files


class ChatProgress:
    """What the turn has stored so far, so its end can close it properly."""

    def __init__(self, opening: Opening, target: gateway.Target) -> None:
        self.chat = opening.chat
        self.input_messages = tuple(opening.input_messages)
        self.target = target
        self.metadata = opening.row_metadata
        self._placeholder: Message | None = opening.placeholder
        self.current: Message | None = None
        self.last: Message | None = None  # the newest assistant message
        self.created: list[Message] = []
        self._parts: list[str] = []
        self._saved_at = time.monotonic()

    async def open_assistant(self) -> Message:
        if self._placeholder is not None:
            message, self._placeholder = self._placeholder, None
        else:
            [message] = await db.run(
                services.messages_append,
                chat=self.chat,
                messages=[_streaming_assistant(self.target, self.metadata)],
            )
        leases.hold(messages=(message.id,))
        self.current = self.last = message
        self._parts = []
        self.created.append(message)
        self._saved_at = time.monotonic()
        return message

    async def add_text(self, text: str) -> None:
        """Collect a delta; every CHAT_PARTIAL_SAVE_SECONDS the text so far is saved."""
        self._parts.append(text)
        every = settings.CHAT_PARTIAL_SAVE_SECONDS
        if self.current is None or not every or time.monotonic() - self._saved_at < every:
            return
        self._saved_at = time.monotonic()
        try:
            await db.run(
                services.message_update,
                message=self.current,
                content="".join(self._parts),
                status=Message.Status.STREAMING,
            )
        except DatabaseError:  # the stream goes on; the final write saves it all
            logger.warning("Could not save a stream's partial text", exc_info=True)
            self._saved_at = time.monotonic() + _PARTIAL_SAVE_BACKOFF

    async def close_assistant(self, round_: RoundCompleted) -> Message:
        assert self.current is not None
        message = await db.run(
            services.message_update,
            retry_for=settings.DATABASE_RETRY_SECONDS,
            message=self.current,
            content=round_.text,
            tool_calls=[wire.tool_call_to_api(c) for c in round_.tool_calls],
            provider=round_.provider,
            model=round_.model,
            **round_.usage.record_fields(),
            finish_reason=round_.finish_reason,
            latency_ms=round_.latency_ms,
            status=Message.Status.COMPLETE,
        )
        leases.release(messages=(message.id,))
        self.current = None
        return message

    async def add_tool_result(self, result: ToolResult) -> Message:
        row: dict[str, Any] = {
            "role": Message.Role.TOOL,
            "content": result.outcome.content,
            "tool_call_id": result.call.id,
            "name": result.call.name,
            "latency_ms": result.latency_ms,
            "metadata": {"is_error": result.outcome.is_error, "source": "server"},
        }
        files: list[Attachment] = []
        if result.outcome.parts:
            # Files first, off the database's thread; a file may outlive a failed insert.
            row["parts"], files = await sync_to_async(attachments.store, thread_sensitive=False)(
                chat=self.chat, parts=result.outcome.parts
            )
        [message] = await db.run(
            services.messages_append, chat=self.chat, messages=[row], attachments=files
        )
        self.created.append(message)
        return message

    def stored(self) -> tuple[Message, ...]:
        """The assistant and tool messages this turn finished."""
        return tuple(m for m in self.created if m.status != Message.Status.STREAMING)

    async def abandon(self, status: str, error: str = "") -> None:
        """Keep the partial answer of a round that did not finish (shielded: this runs
        when the client left, too)."""
        if self.current is None:
            return
        message, self.current = self.current, None
        try:
            await asyncio.shield(
                db.run(
                    services.message_update,
                    retry_for=settings.DATABASE_RETRY_SECONDS,
                    message=message,
                    content="".join(self._parts),
                    status=status,
                    error=error,
                )
            )
        finally:
            # Also when the write failed: the lease then lapses and a sweeper ends it.
            leases.release(messages=(message.id,))
