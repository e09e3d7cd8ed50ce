"""Leases on work in progress: messages being streamed and sends holding an Idempotency-Key.

A worker that streams a message, or runs a send under an `Idempotency-Key`, vouches for
it with a lease (`lease_expires_at`). Each process keeps the ids of what it is working
on in memory; its sweeper renews their leases in one UPDATE per table every
`CHAT_LEASE_SECONDS / 3` seconds, whatever the stream is doing (waiting for a slow
model, running a tool). What nobody renews any more belongs to a worker that died:
the same sweep, in any process, marks such messages `interrupted` (keeping the text
saved so far) and frees such keys, so a retry runs. Every sweep is idempotent and
cheap (two indexed UPDATEs and a DELETE), and a sweep that fails (the database is
down) is simply tried again at the next tick.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from chats.models import IdempotencyRecord, Message

logger = logging.getLogger(__name__)

INTERRUPTED_BY_SWEEP = "The worker streaming this message stopped before it finished."

_lock = threading.Lock()
_messages: set[UUID] = set()
_records: set[int] = set()
_sweeper: threading.Thread | None = None


def lease_seconds() -> float:
    return float(settings.CHAT_LEASE_SECONDS)


def new_deadline() -> datetime:
    return timezone.now() + timedelta(seconds=lease_seconds())


def lapsed_q(*, written: str, now: datetime | None = None) -> Q:
    """Rows whose lease is over; a row without one (written before leases existed)
    lapses a lease after its last write, the `written` field."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=lease_seconds())
    unleased = Q(lease_expires_at__isnull=True, **{f"{written}__lt": stale})
    return Q(lease_expires_at__lt=now) | unleased


def hold(*, messages: tuple[UUID, ...] = (), records: tuple[int, ...] = ()) -> None:
    """This process works on these: the sweeper renews their leases until `release`."""
    with _lock:
        _messages.update(messages)
        _records.update(records)


def release(*, messages: tuple[UUID, ...] = (), records: tuple[int, ...] = ()) -> None:
    with _lock:
        _messages.difference_update(messages)
        _records.difference_update(records)


def held() -> tuple[set[UUID], set[int]]:
    with _lock:
        return set(_messages), set(_records)


def sweep() -> dict[str, int]:
    """Renew this process's leases, then end what nobody renews. Returns the counts."""
    now = timezone.now()
    deadline = now + timedelta(seconds=lease_seconds())
    messages, records = held()
    renewed = 0
    if messages:
        renewed += Message.objects.filter(id__in=messages, status=Message.Status.STREAMING).update(
            lease_expires_at=deadline
        )
    if records:
        renewed += IdempotencyRecord.objects.filter(
            id__in=records, status=IdempotencyRecord.Status.IN_PROGRESS
        ).update(lease_expires_at=deadline)
    lapsed_messages = (
        Message.objects.filter(status=Message.Status.STREAMING)
        .filter(lapsed_q(written="updated_at", now=now))
        .exclude(id__in=messages)
        .update(
            status=Message.Status.INTERRUPTED,
            error=INTERRUPTED_BY_SWEEP,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    lapsed_records, _ = (
        IdempotencyRecord.objects.filter(status=IdempotencyRecord.Status.IN_PROGRESS)
        .filter(lapsed_q(written="created_at", now=now))
        .exclude(id__in=records)
        .delete()
    )
    if lapsed_messages or lapsed_records:
        logger.warning(
            "Ended work whose worker stopped: %d streaming messages marked interrupted, "
            "%d idempotency keys freed",
            lapsed_messages,
            lapsed_records,
        )
    return {"renewed": renewed, "interrupted": lapsed_messages, "freed_keys": lapsed_records}


def _run_forever(stop: threading.Event) -> None:
    while not stop.wait(max(lease_seconds() / 3, 0.05)):
        try:
            sweep()
        except Exception:  # the database may be down: the next tick tries again
            logger.warning("Lease sweep failed; retrying at the next tick", exc_info=True)
        finally:
            # Never keep a connection between ticks: a broken one would be reused, and
            # a healthy one would sit idle out of the pool.
            connection.close()


def start_sweeper() -> threading.Thread:
    """Start this process's sweeper thread once (servers call this at start-up)."""
    global _sweeper
    with _lock:
        if _sweeper is None or not _sweeper.is_alive():
            _sweeper = threading.Thread(
                target=_run_forever, args=(threading.Event(),), name="lease-sweeper", daemon=True
            )
            _sweeper.start()
        return _sweeper
