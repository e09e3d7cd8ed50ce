"""Writes of chats and messages."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from chats.models import Chat, IdempotencyRecord, Message
from llmwrapper.errors import ResourceConflictError
from tenants.models import Subtenant


def chat_create(*, subtenant: Subtenant, **fields: Any) -> Chat:
    return Chat.objects.create(subtenant=subtenant, **fields)


def chat_update(*, chat: Chat, **fields: Any) -> Chat:
    for field, value in fields.items():
        setattr(chat, field, value)
    chat.save()
    return chat


def chat_delete(*, chat: Chat) -> None:
    with transaction.atomic():
        chat.delete()


def messages_append(*, chat: Chat, messages: list[dict[str, Any]]) -> list[Message]:
    """Append messages with the next sequence numbers, atomically.

    The chat row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite serializes
    writers with IMMEDIATE transactions), so concurrent sends get distinct, gap-free,
    ordered sequence numbers.
    """
    with transaction.atomic():
        last = (
            Chat.objects.select_for_update()
            .filter(pk=chat.pk)
            .values_list("last_sequence", flat=True)
            .get()
        )
        created = Message.objects.bulk_create(
            [
                Message(chat_id=chat.pk, sequence=last + i, **fields)
                for i, fields in enumerate(messages, start=1)
            ]
        )
        Chat.objects.filter(pk=chat.pk).update(
            last_sequence=F("last_sequence") + len(messages), updated_at=_now()
        )
    chat.last_sequence = last + len(messages)
    return created


def message_update(*, message: Message, **fields: Any) -> Message:
    for field, value in fields.items():
        setattr(message, field, value)
    message.save(update_fields=[*fields, "updated_at"])
    return message


def _now():  # type: ignore[no-untyped-def]
    from django.utils import timezone

    return timezone.now()


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def idempotency_claim(*, chat: Chat, key: str, fingerprint: str) -> IdempotencyRecord:
    """Claim a key for one send. A finished record is returned for replay.

    Raises 409 when the key is in use by a send still running, or was used with a
    different request body.
    """
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(chat=chat, key=key, fingerprint=fingerprint)
    except IntegrityError:
        record = IdempotencyRecord.objects.get(chat=chat, key=key)
    if record.fingerprint != fingerprint:
        raise ResourceConflictError(
            "This Idempotency-Key was already used with a different request.",
            details={"idempotency_key": key},
        )
    if record.status != IdempotencyRecord.Status.DONE:
        raise ResourceConflictError(
            "A request with this Idempotency-Key is still in progress.",
            details={"idempotency_key": key},
        )
    return record


def idempotency_finish(*, record: IdempotencyRecord, response: dict[str, Any] | None) -> None:
    """Store the outcome; without one (the send failed) the key is released for a retry."""
    if response is None:
        record.delete()
        return
    record.status = IdempotencyRecord.Status.DONE
    record.response = response
    record.save(update_fields=["status", "response"])
