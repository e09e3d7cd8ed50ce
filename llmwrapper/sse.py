"""Server-Sent Events: the named events of the API, one JSON object per event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse

from llmwrapper.observability.metrics import ACTIVE_STREAMS

StreamItem = tuple[str, dict[str, Any]]


def encode(event: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)
    return f"event: {event}\ndata: {payload}\n\n".encode()


async def counted(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # Counted from the first pull to the end (or the client leaving): a stream now open.
    with ACTIVE_STREAMS.labels("sse").track_inprogress():
        async for chunk in chunks:
            yield chunk


async def encoded(items: AsyncIterator[StreamItem]) -> AsyncIterator[bytes]:
    async for event, data in items:
        yield encode(event, data)


def stream_response(
    chunks: AsyncIterator[bytes], *, headers: dict | None = None
) -> StreamingHttpResponse:
    """An event stream of already-encoded chunks, counted among the open streams."""
    response = StreamingHttpResponse(counted(chunks), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    # Proxies such as nginx would otherwise buffer the whole stream.
    response["X-Accel-Buffering"] = "no"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def sse_response(
    items: AsyncIterator[StreamItem], *, headers: dict | None = None
) -> StreamingHttpResponse:
    """The API's named events as Server-Sent Events."""
    return stream_response(encoded(items), headers=headers)
