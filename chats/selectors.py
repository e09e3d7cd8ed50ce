"""Reads of chats and messages, always scoped by subtenant."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from chats.models import Attachment, Chat, Message
from llmwrapper import rows
from llmwrapper.errors import ResourceNotFoundError
from tenants.models import ApiKey, Subtenant


def chat_list(*, subtenant: Subtenant) -> QuerySet[Chat]:
    return Chat.objects.filter(subtenant=subtenant)


def chat_get(*, subtenant: Subtenant, chat_id: UUID | str) -> Chat | None:
    """The subtenant's chat of that id; None for any other, a malformed id included
    (each caller answers its own 404)."""
    try:
        return chat_list(subtenant=subtenant).get(pk=chat_id)
    except (Chat.DoesNotExist, ValidationError, ValueError):
        return None


def chat_access(*, key: ApiKey, chat_id: UUID | str) -> Chat:
    """The only way from a chat id in a request to a Chat: another tenant's chat is a 404."""
    if key.is_admin:
        chat = Chat.objects.select_related("subtenant").filter(pk=chat_id).first()
    else:
        # A subtenant's key carries its subtenant, read with it: no join needed (and
        # no query compiler: every send reads its chat).
        found = rows.instances(
            Chat,
            '"id" = %s AND "subtenant_id" = %s',
            [rows.value(Chat, "id", chat_id), rows.value(Chat, "subtenant", key.subtenant_id)],
        )
        chat = found[0] if found else None
        if chat is not None:
            chat.subtenant = key.subtenant
    if chat is None:
        raise ResourceNotFoundError("Chat not found.", details={"id": str(chat_id)})
    return chat


def message_list(*, chat: Chat) -> QuerySet[Message]:
    return Message.objects.filter(chat=chat).order_by("sequence")


def message_list_newest(*, chat: Chat, limit: int) -> list[Message]:
    """The newest `limit` messages of the chat, in chronological order."""
    newest = list(message_list(chat=chat).order_by("-sequence")[:limit])
    newest.reverse()
    return newest


def message_context_rows(
    *, chat: Chat, before_sequence: int | None = None, limit: int
) -> list[tuple[str, str, list, str, str, list]]:
    """The newest `limit` finished messages (before `before_sequence`, when given),
    oldest first, as (role, content, tool_calls, tool_call_id, name, parts) rows."""
    # Every send reads its context: plain SQL (llmwrapper.rows), on the (chat, sequence)
    # index, first among the `2 * limit` sequence numbers below the newest one known.
    # Bounded so, the read costs the same whatever plan the database picks for a long
    # chat (its statistics may hold a chat to be a few rows, then read and sort it all);
    # only a chat whose recent messages are mostly unfinished reads further.
    newest = chat.last_sequence if before_sequence is None else before_sequence - 1
    floor = newest - 2 * limit
    found = _context_rows(chat, before_sequence, floor, limit)
    if len(found) < limit and floor > 0:
        found = _context_rows(chat, before_sequence, 0, limit)
    found.reverse()
    return found


def _context_rows(
    chat: Chat, before_sequence: int | None, floor: int, limit: int
) -> list[tuple[str, str, list, str, str, list]]:
    """Up to `limit` finished messages of the chat numbered above `floor` (and below
    `before_sequence`), newest first."""
    where = '"chat_id" = %s AND "status" NOT IN (%s, %s)'
    params: list[Any] = [rows.value(Message, "chat", chat.pk), "streaming", "error"]
    if before_sequence is not None:
        where += ' AND "sequence" < %s'
        params.append(before_sequence)
    if floor > 0:
        where += ' AND "sequence" > %s'
        params.append(floor)
    return rows.values(  # type: ignore[return-value]
        Message,
        ("role", "content", "tool_calls", "tool_call_id", "name", "parts"),
        where,
        params,
        tail=f'ORDER BY "sequence" DESC LIMIT {int(limit)}',
    )


def message_pending_tool_calls(*, chat: Chat) -> dict[str, dict]:
    """Tool calls of the newest assistant message that have no result yet, by id."""
    last_call = (
        Message.objects.filter(chat=chat, role="assistant")
        .exclude(tool_calls=[])
        .order_by("-sequence")
        .first()
    )
    if last_call is None:
        return {}
    answered = set(
        Message.objects.filter(chat=chat, role="tool", sequence__gt=last_call.sequence).values_list(
            "tool_call_id", flat=True
        )
    )
    return {c["id"]: c for c in last_call.tool_calls if c["id"] not in answered}


def message_list_of_response(*, chat: Chat, response_id: str) -> list[Message]:
    """The chat's assistant messages that answered the stored response `response_id`,
    in sequence order."""
    return list(
        Message.objects.filter(chat=chat, role="assistant", metadata__response_id=response_id)
    )


def message_range(*, chat: Chat, first: int, last: int) -> QuerySet[Message]:
    """The chat's messages from sequence `first` to `last` inclusive, in sequence order."""
    return Message.objects.filter(chat=chat, sequence__gte=first, sequence__lte=last)


def attachment_storage_names(
    *, chat_id: UUID | str, attachment_ids: Iterable[str]
) -> dict[UUID, str]:
    """The storage names of the chat's attachments among `attachment_ids`, by id."""
    return dict(
        Attachment.objects.filter(chat_id=chat_id, pk__in=attachment_ids).values_list(
            "pk", "storage_name"
        )
    )


def attachment_access(*, key: ApiKey, chat_id: UUID | str, attachment_id: UUID | str) -> Attachment:
    """An attachment of a chat the key reaches; anything else is a 404."""
    chat = chat_access(key=key, chat_id=chat_id)
    attachment = Attachment.objects.filter(chat=chat, pk=attachment_id).first()
    if attachment is None:
        raise ResourceNotFoundError("Attachment not found.", details={"id": str(attachment_id)})
    return attachment
