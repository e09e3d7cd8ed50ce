"""WebSocket routes: the chat socket, with or without its trailing slash. Any other path
is accepted, sent a `not_found` error frame and closed with 4004, so a client learns
why (a refusal before accepting reaches it only as a bare HTTP 403)."""

import json
from typing import Any

from django.urls import path, re_path

from llmwrapper.errors import error_body
from surfaces.chats.consumers import CLOSE_NOT_FOUND, ChatConsumer


async def websocket_not_found(scope: dict, receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    body = error_body("not_found", f"No WebSocket endpoint at {scope['path']}.")
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps({"type": "error", **body})})
    await send({"type": "websocket.close", "code": CLOSE_NOT_FOUND})


chat_socket = ChatConsumer.as_asgi()

websocket_urlpatterns = [
    path("ws/chats/<uuid:chat_id>/", chat_socket),
    path("ws/chats/<uuid:chat_id>", chat_socket),
    re_path(r"", websocket_not_found),
]
