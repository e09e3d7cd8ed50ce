"""Client input, parsed with the bounds every surface applies.

Every JSON body of the API goes through `parse_json` (DRF's parser below is the
default of every view, and views that read a body themselves call the same function),
so text the database cannot hold (NUL characters, unpaired surrogates), nesting deep
enough to exhaust the stack, and numbers JSON cannot represent (`NaN`, `Infinity`,
`1e999`) are refused with a 400 before anything is stored or any model is called.

The URL is checked the same way (`url_problem`): a NUL character in the path or the
query string is refused before any view runs.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from llmwrapper import safejson


class UnsafeBodyError(ParseError):
    """A body that is not JSON, or JSON the service refuses; `details.reason` says why."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.details = {"reason": reason}


def parse_json(data: str | bytes | bytearray) -> Any:
    """Parse a client's JSON text, raising `UnsafeBodyError` for anything refused."""
    try:
        value = safejson.loads(data)
    except safejson.UnsafeJsonError as exc:
        raise UnsafeBodyError(exc.message, reason=exc.reason) from exc
    return value


class SafeJSONParser(JSONParser):
    """DRF's JSON parser on top of `parse_json`."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return parse_json(stream.read() if stream is not None else b"")


NUL_MESSAGE: str = safejson.text_problem("\x00") or ""


def url_problem(request: HttpRequest) -> dict[str, list[str]] | None:
    """Field errors for NUL characters in the path or in a query parameter, else None.

    Django decodes `%00` into a NUL character, which PostgreSQL refuses in any query;
    invalid UTF-8 is already replaced when the URL is decoded, so NUL is the one
    character left to refuse.
    """
    if "\x00" in request.path:
        return {"path": [NUL_MESSAGE]}
    if "%00" not in request.META.get("QUERY_STRING", ""):
        return None
    return {
        name if "\x00" not in name else "query": [NUL_MESSAGE]
        for name, values in request.GET.lists()
        if "\x00" in name or any("\x00" in v for v in values)
    } or None
