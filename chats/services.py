"""Writes of chats and messages."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, connection, transaction

from chats import leases
from chats.models import Attachment, Chat, IdempotencyRecord, Message
from llmwrapper import rows
from llmwrapper.errors import ResourceConflictError
from tenants.models import Subtenant

logger = logging.getLogger(__name__)


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


def messages_append(
    *, chat: Chat, messages: list[dict[str, Any]], attachments: Sequence[Attachment] = ()
) -> list[Message]:
    """Append messages with the next sequence numbers, atomically.

    One UPDATE ... RETURNING moves the chat's `last_sequence` on and locks its row to
    the end of the transaction (SQLite serializes writers with IMMEDIATE transactions),
    so concurrent sends get distinct, gap-free, ordered sequence numbers; the turn
    itself never holds the row. A message appended as `streaming` starts with a lease.
    `attachments` (chats.attachments.store: their files are written) are inserted with
    the messages that refer to them; one the chat already has is kept as it is.
    """
    deadline = leases.new_deadline()
    for fields in messages:
        if fields.get("status") == Message.Status.STREAMING:
            fields.setdefault("lease_expires_at", deadline)
    if connection.vendor == "postgresql" and not attachments and len(messages) <= 100:
        return _append_in_one_statement(chat, messages)
    with transaction.atomic():
        last = _take_sequences(chat, len(messages)) - len(messages)
        if attachments:
            Attachment.objects.bulk_create(attachments, ignore_conflicts=True)
        created = rows.insert(
            Message(chat_id=chat.pk, sequence=last + i, **fields)
            for i, fields in enumerate(messages, start=1)
        )
    chat.last_sequence = last + len(messages)
    return created


def _append_in_one_statement(chat: Chat, messages: list[dict[str, Any]]) -> list[Message]:
    """`messages_append` on PostgreSQL: the chat's UPDATE ... RETURNING feeds the
    INSERT of one statement, so the row lock lasts one statement and the append costs
    one round trip instead of four (BEGIN, UPDATE, INSERT, COMMIT)."""
    count = len(messages)
    update, params = _sequences_update(chat, count)
    # A message's `sequence` holds its distance from the chat's new last one until the
    # database has numbered it.
    objs = [
        Message(chat_id=chat.pk, sequence=count - i, **fields)
        for i, fields in enumerate(messages, start=1)
    ]
    try:
        created = rows.insert_returning(
            objs,
            with_=(f"taken AS ({update})", params),
            computed={"sequence": "(SELECT last_sequence FROM taken) - %s"},
            returning=("sequence",),
        )
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "column_name", None) == "sequence":
            raise Chat.DoesNotExist from exc  # the chat is gone: nothing was numbered
        raise
    chat.last_sequence = max(m.sequence for m in created)
    return created


def _take_sequences(chat: Chat, count: int) -> int:
    """Add `count` to the chat's `last_sequence`; the new value (in a transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(*_sequences_update(chat, count))
        row = cursor.fetchone()
    if row is None:
        raise Chat.DoesNotExist
    return row[0]


def _sequences_update(chat: Chat, count: int) -> tuple[str, list[Any]]:
    """The UPDATE that moves the chat's `last_sequence` on by `count` and returns it."""
    table = connection.ops.quote_name(Chat._meta.db_table)
    sql = (
        f"UPDATE {table} SET last_sequence = last_sequence + %s, updated_at = %s"  # noqa: S608
        " WHERE id = %s RETURNING last_sequence"
    )
    return sql, [count, rows.value(Chat, "updated_at", _now()), rows.value(Chat, "id", chat.pk)]


def message_update(*, message: Message, **fields: Any) -> Message:
    """Save the given fields; a message that stops `streaming` gives up its lease."""
    if "status" in fields:
        fields["lease_expires_at"] = (
            leases.new_deadline() if fields["status"] == Message.Status.STREAMING else None
        )
    fields["updated_at"] = _now()
    for field, value in fields.items():
        setattr(message, field, value)
    # One UPDATE of these columns (a stream writes its message several times).
    rows.update(Message, message.pk, fields)
    return message


def _now():  # type: ignore[no-untyped-def]
    from django.utils import timezone

    return timezone.now()


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def idempotency_claim(*, chat: Chat, key: str, fingerprint: str) -> IdempotencyRecord:
    """Claim a key for one send. A finished record is returned for replay.

    A claim is a lease (see chats/leases.py): a record whose send stopped renewing it
    (its worker died) is taken over by the next claim with the same request.
    Raises 409 when the key is in use by a send still running, or was used with a
    different request body.
    """
    for _ in range(3):
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    chat=chat,
                    key=key,
                    fingerprint=fingerprint,
                    lease_expires_at=leases.new_deadline(),
                )
        except IntegrityError:
            record = IdempotencyRecord.objects.filter(chat=chat, key=key).first()
        if record is not None:
            break
    else:  # freed and taken again between our attempts: in use by another send
        raise ResourceConflictError(
            "A request with this Idempotency-Key is still in progress.",
            details={"idempotency_key": key},
        )
    if record.fingerprint != fingerprint:
        raise ResourceConflictError(
            "This Idempotency-Key was already used with a different request.",
            details={"idempotency_key": key},
        )
    if record.status != IdempotencyRecord.Status.DONE and not _take_over(record):
        raise ResourceConflictError(
            "A request with this Idempotency-Key is still in progress.",
            details={"idempotency_key": key},
        )
    return record


def _take_over(record: IdempotencyRecord) -> bool:
    """Claim an in-progress record whose lease lapsed; False when it is still held.
    One UPDATE: a holder that renews its lease meanwhile keeps the record."""
    deadline, claim = leases.new_deadline(), uuid.uuid4()
    taken = (
        IdempotencyRecord.objects.filter(
            pk=record.pk, status=IdempotencyRecord.Status.IN_PROGRESS, claim=record.claim
        )
        .filter(leases.lapsed_q(written="created_at"))
        .update(lease_expires_at=deadline, claim=claim)
    )
    record.lease_expires_at, record.claim = deadline, claim
    return taken == 1


def idempotency_finish(*, record: IdempotencyRecord, response: dict[str, Any] | None) -> None:
    """Store the outcome; without one (the send failed) the key is released for a retry.

    A send whose lease lapsed meanwhile (its key freed or taken over by a retry) stores
    nothing: the key belongs to the newer send.
    """
    held = IdempotencyRecord.objects.filter(
        pk=record.pk, status=IdempotencyRecord.Status.IN_PROGRESS, claim=record.claim
    )
    if response is None:
        held.delete()
        return
    if not held.update(
        status=IdempotencyRecord.Status.DONE, response=response, lease_expires_at=None
    ):
        logger.warning("Idempotency-Key %r finished after its lease lapsed", record.key)
        return
    record.status, record.response, record.lease_expires_at = (
        IdempotencyRecord.Status.DONE,
        response,
        None,
    )
