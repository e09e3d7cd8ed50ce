"""JSON log lines, and the content redaction used when `LOG_CONTENT` is on.

`JsonFormatter` turns every record of the process into one JSON object per line:
`ts`, `level`, `logger`, `message`, the `request_id` of the request being handled (when
there is one), the record's `extra` fields, and `exc_info` for exceptions. Log shippers
(Loki, CloudWatch, Datadog, ...) then index the fields without parsing text.
"""

from __future__ import annotations

import json
import logging
import re
import time
from itertools import islice
from typing import Any

from llmwrapper.observability.context import current_request_id

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


# Secrets that can appear in bodies even when content logging is on: our API keys
# (e.g. in the answer that creates one), and any JSON field named like a credential.
_API_KEY = re.compile(r"\blw_[A-Za-z0-9_\-]{8,}")
_SECRET_FIELD = re.compile(
    r'("(?:api_key|raw_key|secret|password|token|authorization|headers|env)"\s*:\s*)'
    r'("(?:[^"\\]|\\.)*"|\{[^{}]*\})',
    re.IGNORECASE,
)


def loggable_content(data: bytes | str, limit: int) -> str:
    """A body for the request log: decoded, secrets redacted, cut to `limit` characters."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    cut = len(text) > limit
    # Redact before cutting, so that a secret straddling the cut is still found.
    text = _SECRET_FIELD.sub(r'\1"[redacted]"', _API_KEY.sub("lw_[redacted]", text))
    return text[:limit] + "…[truncated]" if cut else text
