"""JSON log lines, and the content redaction used when `LOG_CONTENT` is on.

`JsonFormatter` turns every record of the process into one JSON object per line:
`ts`, `level`, `logger`, `message`, the `request_id` of the request being handled (when
there is one), the record's `extra` fields, and `exc_info` for exceptions. Log shippers
(Loki, CloudWatch, Datadog, ...) then index the fields without parsing text.
"""

from __future__ import annotations

import json
import logging
import time
from itertools import islice
from typing import Any

from llmwrapper.observability.context import current_request_id
from llmwrapper.observability.redaction import redact_body

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)

# Attributes every LogRecord has; anything else on a record came from `extra=`. A record
# gets its standard attributes first, so the extras are found after them.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_FIRST_EXTRA = len(vars(logging.makeLogRecord({})))
# Extras some libraries add for their own console output (uvicorn's ANSI-coloured copy).
_SKIPPED_EXTRAS = _STANDARD_ATTRS | {"color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in islice(record.__dict__.items(), _FIRST_EXTRA, None):
            if key not in _SKIPPED_EXTRAS and not key.startswith("_"):
                entry[key] = value
        if record.exc_text:  # set (and redacted) by RedactSecrets
            entry["exc_info"] = record.exc_text
        elif record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return _ENCODER.encode(entry)


_last_second: tuple[int, str] = (-1, "")


def _timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC with milliseconds; the formatted second is reused within a second."""
    global _last_second
    second = int(record.created)
    if _last_second[0] != second:
        _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_last_second[1]}.{int(record.msecs):03d}Z"


def loggable_content(data: bytes | str, limit: int) -> str:
    """A body for the request log: decoded, credentials redacted, cut to `limit` characters.

    JSON bodies are redacted on their parsed structure (so escaped key names, URLs and
    values of any shape are found), then serialised again; other bodies by their text.
    Redaction comes before the cut, so a secret straddling it is still found.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = redact_body(text)
    return text[:limit] + "…[truncated]" if len(text) > limit else text
