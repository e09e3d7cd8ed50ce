"""The conversation sent to the model: system prompt, memories, then recent messages."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from chats import attachments, selectors
from chats.models import Chat, Message
from memories.rendering import render_memories
from memories.selectors import memory_context
from providers.core import types, wire
from providers.core.content import DocumentPart, ImagePart

# Rough costs for the context budget: an image is about a thousand tokens whatever its
# bytes; a PDF about one token per 50 bytes (a page of text and its picture).
IMAGE_TOKENS = 1000
DOCUMENT_BYTES_PER_TOKEN = 50


def load_recent(*, chat: Chat, before_sequence: int | None = None) -> list[types.Message]:
    """The newest messages that may enter the context window, oldest first, normalized.

    Bounded by CHAT_HISTORY_MAX_MESSAGES so the cost of a send does not grow with the
    chat's length; read as plain rows (the context needs six columns, not models).
    Images and documents are read from storage only for the messages that can fit
    CHAT_CONTEXT_MAX_TOKENS: older ones would be dropped by `build_messages` anyway.
    """
    rows = selectors.message_context_rows(
        chat=chat, before_sequence=before_sequence, limit=settings.CHAT_HISTORY_MAX_MESSAGES
    )
    messages = [_normalized(*row) for row in rows]
    if not any(parts for *_, parts in rows):
        return messages
    fitting = fit_to_budget(messages, budget_tokens=settings.CHAT_CONTEXT_MAX_TOKENS)
    return attachments.read_parts(chat_id=chat.pk, messages=fitting)


def to_normalized(message: Message) -> types.Message:
    normalized = _normalized(
        message.role,
        message.content,
        message.tool_calls,
        message.tool_call_id,
        message.name,
        message.parts,
    )
    if not normalized.parts:
        return normalized
    return attachments.read_parts(chat_id=message.chat_id, messages=[normalized])[0]


def _normalized(
    role: str, content: str, tool_calls: list[dict], tool_call_id: str, name: str, parts: list
) -> types.Message:
    return types.Message(
        role=role,  # type: ignore[arg-type]
        content=content,
        tool_calls=tuple(wire.tool_call_from_api(c) for c in tool_calls) if tool_calls else (),
        tool_call_id=tool_call_id or None,
        name=name or None,
        parts=attachments.parts_from_stored(parts) if parts else (),
    )


def _units(messages: Sequence[types.Message]) -> list[list[types.Message]]:
    """Group messages so an assistant tool call and its results stay together.

    Vendors reject a tool result without the call it answers, and a call without its
    result: results whose call is outside the window are dropped, and calls that were
    never answered are removed from their assistant message (kept if it has text).
    """
    units: list[list[types.Message]] = []
    for message in messages:
        if message.role == "tool":
            if units and units[-1][0].tool_calls:
                units[-1].append(message)
            continue
        units.append([message])
    cleaned = []
    for unit in units:
        head = unit[0]
        if head.tool_calls:
            answered = {m.tool_call_id for m in unit[1:]}
            calls = tuple(c for c in head.tool_calls if c.id in answered)
            if len(calls) != len(head.tool_calls):
                head = types.Message(head.role, head.content, tool_calls=calls)
                unit = [head, *(m for m in unit[1:] if m.tool_call_id in {c.id for c in calls})]
            if not calls and not head.content:
                continue
        cleaned.append(unit)
    return cleaned


def _estimate_tokens(message: types.Message) -> int:
    size = len(message.content) + sum(
        len(str(c.arguments)) + len(c.name) for c in message.tool_calls
    )
    return size // 4 + 4 + sum(_part_tokens(p) for p in message.parts)


def _part_tokens(part: object) -> int:
    if isinstance(part, attachments.StoredPart):
        if part.kind == "image_url":
            return IMAGE_TOKENS
        return max(IMAGE_TOKENS, part.size // DOCUMENT_BYTES_PER_TOKEN)
    if isinstance(part, ImagePart):
        return IMAGE_TOKENS
    if isinstance(part, DocumentPart):
        return max(IMAGE_TOKENS, len(part.data) // DOCUMENT_BYTES_PER_TOKEN)
    return 0  # text: counted in `content`


def fit_to_budget(
    history: Sequence[types.Message], *, budget_tokens: int, keep_last: int = 1
) -> list[types.Message]:
    """Drop the oldest units until the estimate fits; the newest `keep_last` units always stay."""
    units = _units(history)
    kept: list[list[types.Message]] = []
    used = 0
    for index, unit in enumerate(reversed(units)):
        cost = sum(_estimate_tokens(m) for m in unit)
        if index >= keep_last and used + cost > budget_tokens:
            break
        kept.append(unit)
        used += cost
    return [m for unit in reversed(kept) for m in unit]


def system_context(*, chat: Chat, include_memories: bool, memory_keys: list[str] | None) -> str:
    """The chat's system prompt, then memories when asked (the format is documented)."""
    parts = [chat.system_prompt.strip()] if chat.system_prompt.strip() else []
    if include_memories or memory_keys:
        rendered = render_memories(memory_context(subtenant=chat.subtenant, keys=memory_keys))
        if rendered:
            parts.append(rendered)
    return "\n\n".join(parts)


def build_messages(*, recent: Sequence[types.Message], system: str) -> tuple[types.Message, ...]:
    budget = settings.CHAT_CONTEXT_MAX_TOKENS - (len(system) // 4)
    history = fit_to_budget(recent, budget_tokens=max(budget, 0))
    prefix = (types.Message("system", system),) if system else ()
    return (*prefix, *history)
