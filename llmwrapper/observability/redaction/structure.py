"""Credentials in parsed JSON and in bodies: values of keys named like credentials are
replaced whatever they hold, every other string goes through `redact_text`."""

from __future__ import annotations

import json
from typing import Any

from llmwrapper import safejson
from llmwrapper.observability.redaction.text import REDACTED, is_credential_name, redact_text


def redact_structure(value: Any) -> Any:
    """A copy of a parsed JSON value with credential fields and visible secrets redacted."""
    if isinstance(value, dict):
        return {
            redact_text(key): REDACTED if is_credential_name(key) else redact_structure(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_structure(item) for item in value]
    if isinstance(value, str):
        return _redact_string(value)
    return value


def _redact_string(value: str) -> str:
    stripped = value.lstrip()
    if stripped[:1] in ("{", "["):
        # JSON inside a string (tool-call arguments): redacted by its own structure.
        try:
            inner = safejson.loads(value)
        except safejson.UnsafeJsonError:
            pass
        else:
            return _dumps(redact_structure(inner))
    return redact_text(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def redact_body(text: str) -> str:
    """A request or response body, redacted: by structure when it is JSON, else per line
    (each line that is JSON, or an SSE `data:` line holding JSON, by its structure)."""
    try:
        return _dumps(redact_structure(safejson.loads(text)))
    except safejson.UnsafeJsonError:
        pass
    lines = text.split("\n")
    for number, line in enumerate(lines):
        head, payload = ("data: ", line[5:]) if line.startswith("data:") else ("", line)
        candidate = payload.strip()
        if candidate[:1] in ("{", "["):
            try:
                lines[number] = head + _dumps(redact_structure(safejson.loads(candidate)))
                continue
            except safejson.UnsafeJsonError:
                pass
        lines[number] = redact_text(line)
    return "\n".join(lines)
