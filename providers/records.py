"""Call records are written by one background thread per process, off the request path.

A request hands its finished `LlmCall` rows to the writer and answers at once; the
writer stores them in batches, with their tokens counted against the subtenant's
limits, on a database connection it keeps. Records reach the database milliseconds
later; at exit the queue is drained. With CALL_RECORDS_IN_BACKGROUND=false they are
written before the response instead.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable

from django.conf import settings
from django.db import connection

from providers.models import LlmCall

logger = logging.getLogger(__name__)

Batch = list[LlmCall]
_MAX_BATCH = 500


def store(records: Batch, count_tokens: Callable[[object, int], None]) -> None:
    """Insert records and count their tokens per subtenant (runs in the caller's thread)."""
    LlmCall.objects.bulk_create(records)
    tokens: dict[object, int] = defaultdict(int)
    subtenants = {}
    for record in records:
        tokens[record.subtenant_id] += record.input_tokens + record.output_tokens
        subtenants[record.subtenant_id] = record.subtenant
    for subtenant_id, used in tokens.items():
        count_tokens(subtenants[subtenant_id], used)


class RecordWriter:
    def __init__(self, count_tokens: Callable[[object, int], None]) -> None:
        self._count_tokens = count_tokens
        self._queue: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
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
            first = self._queue.get()
            batches = [first]
            while len(batches) < _MAX_BATCH:
                try:
                    batches.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [r for batch in batches if batch for r in batch]
            try:
                self._write(records)
            finally:
                with self._idle:
                    self._pending -= len(batches)
                    self._idle.notify_all()

    def _write(self, records: Batch) -> None:
        for attempt in (1, 2):
            try:
                store(records, self._count_tokens)
                return
            except Exception:
                # A connection the server dropped: reconnect once before giving up.
                connection.close()
                if attempt == 2:
                    # Records must not take the service down; the log keeps what was lost.
                    logger.exception("could not store %d LLM call records", len(records))


_writer: RecordWriter | None = None


def writer() -> RecordWriter:
    global _writer
    if _writer is None:
        from tenants.limits import record_tokens

        _writer = RecordWriter(record_tokens)  # type: ignore[arg-type]
        atexit.register(_writer.wait_idle, 5.0)
    return _writer


def in_background() -> bool:
    return settings.CALL_RECORDS_IN_BACKGROUND


def wait_idle(timeout: float = 10.0) -> bool:
    return writer().wait_idle(timeout) if _writer is not None else True
