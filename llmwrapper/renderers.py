"""Content negotiation for streaming endpoints.

SSE clients send `Accept: text/event-stream`. The stream itself is a
StreamingHttpResponse; this renderer only exists so that negotiation accepts such
clients, and so that an error raised before the stream starts reaches them as one
`error` event (with the error's HTTP status).
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.renderers import BaseRenderer, JSONRenderer


class EventStreamRenderer(BaseRenderer):
    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if data is None:
            return b""
        body = data.get("error", data) if isinstance(data, dict) else data
        return f"event: error\ndata: {json.dumps(body, default=str)}\n\n".encode()


STREAM_RENDERERS = [JSONRenderer, EventStreamRenderer]
