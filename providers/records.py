"""Call records are written by one background thread per process, off the request path.

A request hands its finished `LlmCall` rows to the writer and answers at once; the
writer prices them (`providers.prices`) and stores them in batches, with their tokens
and cost counted against the subtenant's and the key's limits. The writer gathers what
arrives within CALL_RECORDS_BATCH_SECONDS of a batch's first record into that batch:
one transaction stores them all, so a busy process pays for one insert and one budget
update per batch instead of per call. Records reach the database that much later;
`wait_idle` (tests, and the exit hook) cuts the wait short.

None is lost to a database that went away: the writer keeps the batch and retries on a
fresh connection with backoff for up to CALL_RECORDS_RETRY_SECONDS (a retry stores and
counts nothing twice), and at exit it drains what it holds. A record the database
refuses for what it contains is logged and skipped, and the rest of its batch is
stored. With CALL_RECORDS_IN_BACKGROUND=false they are written before the response.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from llmwrapper.db import DB_ERRORS
from providers import prices
from providers.models import LlmCall

logger = logging.getLogger(__name__)

Batch = list[LlmCall]
_MAX_BATCH = 500
_RETRY_FIRST_DELAY = 0.2
_RETRY_MAX_DELAY = 5.0


def store(records: Batch, *, skip_stored: bool = False) -> None:
    """Price records (from the price table), insert them and count their tokens and
    cost against budgets in one transaction, then count the tokens against the
    per-minute limits (runs in the caller's thread).

    `skip_stored` leaves out records already in the database: a retry after a commit
    whose answer was lost stores and counts nothing twice.
    """
    from tenants import limits

    with transaction.atomic():
        if skip_stored:
            stored = set(
                LlmCall.objects.filter(pk__in=[r.pk for r in records]).values_list("pk", flat=True)
            )
            records = [r for r in records if r.pk not in stored]
        prices.price_calls(records)
        LlmCall.objects.bulk_create(records)
        used = _use_by_subtenant(records)
        for subtenant, tokens, cost in used:
            limits.record_budget_use(subtenant, tokens=tokens, cost_usd=cost)
        for key, cost in _spend_by_key(records):
            limits.record_key_spend(key, cost)
    for subtenant, tokens, _ in used:
        limits.record_rate_tokens(subtenant, tokens)


def _use_by_subtenant(records: Batch) -> list[tuple[Any, int, Decimal]]:
    tokens: dict[object, int] = defaultdict(int)
    costs: dict[object, Decimal] = defaultdict(Decimal)
    subtenants = {}
    for record in records:
        tokens[record.subtenant_id] += record.input_tokens + record.output_tokens
        costs[record.subtenant_id] += record.cost_usd or 0
        subtenants[record.subtenant_id] = record.subtenant
    return [(subtenants[pk], used, costs[pk]) for pk, used in tokens.items()]


def _spend_by_key(records: Batch) -> list[tuple[Any, Decimal]]:
    costs: dict[object, Decimal] = defaultdict(Decimal)
    keys = {}
    for record in records:
        if record.api_key_id is not None and record.cost_usd:
            costs[record.api_key_id] += record.cost_usd
            keys[record.api_key_id] = record.api_key
    return [(keys[pk], cost) for pk, cost in costs.items()]


class RecordWriter:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Batch] = queue.SimpleQueue()
        # Set by `wait_idle`: store what was gathered now. While gathering, the writer
        # waits on this, not on the queue, so a request's `submit` wakes no thread
        # (but the one that starts a batch).
        self._flush = threading.Event()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, records: Batch) -> None:
        with self._idle:
            self._pending += 1
        self._ensure_thread()
        self._queue.put(records)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until everything submitted so far is stored (tests, shutdown)."""
        with self._idle:
            if self._pending:
                self._flush.set()
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="llm-call-records", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            batches = self._gather(self._queue.get())
            try:
                self._write([r for batch in batches for r in batch])
            finally:
                with self._idle:
                    self._pending -= len(batches)
                    self._idle.notify_all()

    def _gather(self, first: Batch) -> list[Batch]:
        """`first` and what follows it within CALL_RECORDS_BATCH_SECONDS, or until a
        flush is asked for (then only what is queued already), up to _MAX_BATCH."""
        if self._queue.qsize() < _MAX_BATCH - 1:
            self._flush.wait(settings.CALL_RECORDS_BATCH_SECONDS)
        self._flush.clear()  # what is queued now is stored next: a flush asked for is met
        batches = [first]
        while len(batches) < _MAX_BATCH:
            try:
                batches.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batches

    def _write(self, records: Batch) -> None:
        deadline = time.monotonic() + settings.CALL_RECORDS_RETRY_SECONDS
        delay = _RETRY_FIRST_DELAY
        retrying = False
        while True:
            try:
                store(records, skip_stored=retrying)
                return
            except DB_ERRORS as exc:
                if time.monotonic() + delay > deadline:
                    logger.error(
                        "Gave up storing %d LLM call records after %.0f s: %s",
                        len(records),
                        settings.CALL_RECORDS_RETRY_SECONDS,
                        exc,
                    )
                    return
                # The database went away: keep the records and retry on a new connection.
                logger.warning(
                    "Database unavailable (%s): keeping %d LLM call records, retrying in %.1f s",
                    exc,
                    len(records),
                    delay,
                )
            except Exception:
                connection.close()
                self._write_each(records)
                return
            finally:
                # No connection is kept between batches: the pool lends a checked one.
                connection.close()
            retrying = True
            time.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_DELAY)

    def _write_each(self, records: Batch) -> None:
        """Store records one by one, skipping (and logging) those the database refuses."""
        for record in records:
            try:
                store([record], skip_stored=True)
            except Exception:
                logger.exception("could not store LLM call record %s", record.id)
            finally:
                connection.close()


_writer: RecordWriter | None = None


def writer() -> RecordWriter:
    global _writer
    if _writer is None:
        _writer = RecordWriter()
        atexit.register(_writer.wait_idle, 5.0)
    return _writer


def in_background() -> bool:
    return settings.CALL_RECORDS_IN_BACKGROUND


def wait_idle(timeout: float = 10.0) -> bool:
    return writer().wait_idle(timeout) if _writer is not None else True
