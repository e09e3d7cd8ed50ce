"""JSON from clients, parsed with the bounds every surface applies.

Python's `json` accepts what the rest of the service cannot hold: nesting deep enough
to exhaust the interpreter's stack (`RecursionError` at about 1,000 levels), NUL
characters (PostgreSQL refuses them in text; SQLite stores them) and unpaired UTF-16
surrogates (`"\\ud800"`: stored by SQLite, then every read of the row fails), and
numbers JSON cannot represent (`NaN`, `Infinity`, `1e999`: neither PostgreSQL's jsonb
nor a strict encoder takes them). `loads` rejects them all with `UnsafeJsonError`, so
a request carrying them is refused before anything is stored or any model is called,
identically on every database.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64


class UnsafeJsonError(ValueError):
    """The text is not JSON, or is JSON the service refuses; `reason` says which."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as text (None when it can)."""
    if "\x00" in value:
        return "Text must not contain NUL characters (\\u0000)."
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "Text must not contain unpaired UTF-16 surrogates."
    return None


def check_value(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a decoded JSON value nested deeper than `max_depth`, holding a string (or
    an object key) that `text_problem` refuses, or a number that is not finite.
    Iterative: no recursion to exhaust."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise UnsafeJsonError(problem, reason="invalid_text")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise UnsafeJsonError(
                    "Numbers must be finite (no NaN, Infinity or out-of-range values).",
                    reason="invalid_number",
                )
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise UnsafeJsonError(
                    f"JSON is nested deeper than {max_depth} levels.", reason="too_deep"
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, depth))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text from a client, raising `UnsafeJsonError` for anything refused."""
    if isinstance(data, bytes | bytearray):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsafeJsonError("JSON must be UTF-8.", reason="malformed") from exc
    try:
        value = json.loads(data)
    except RecursionError as exc:
        raise UnsafeJsonError(
            f"JSON is nested deeper than {max_depth} levels.", reason="too_deep"
        ) from exc
    except ValueError as exc:
        raise UnsafeJsonError(f"Malformed JSON: {exc}", reason="malformed") from exc
    check_value(value, max_depth=max_depth)
    return value
