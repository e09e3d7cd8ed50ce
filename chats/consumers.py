"""`/ws/chats/{id}/`: send messages and watch a chat live over a WebSocket.

Frames from the client are JSON objects with a `type`:
- `message.send`: the same fields as `POST /chats/{id}/messages` (content,
  include_memories, memory_keys, tools, functions, tool_results, provider, model, ...).
  Sends are handled one after another, in the order they arrive.
- `cancel`: stop the generation in progress (its partial text is kept, `interrupted`).
- `ping`: answered with `pong`.

Frames to the client are the SSE events as JSON with a `type` field
(`message.created`, `delta`, `tool_call`, `tool_result`, `message.completed`),
and `{"type": "error", "error": {type, message, details}}`. Events of messages sent on
this chat by anyone else (HTTP, another socket) arrive too, with `"origin": "other"`.

Close codes: 4001 unauthenticated, 4003 origin not allowed, 4004 chat not found.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from rest_framework.exceptions import APIException

from chats import conversation, fanout, selectors
from chats.serializers import SendMessageSerializer
from llmwrapper.auth import authenticate_raw_key, parse_bearer
from llmwrapper.errors import ApplicationError, error_body
from llmwrapper.observability.metrics import ACTIVE_STREAMS
from providers.errors import ProviderError
from tenants.limits import check_request

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4001
CLOSE_FORBIDDEN_ORIGIN = 4003
CLOSE_NOT_FOUND = 4004
MAX_QUEUED_SENDS = 8


def _headers(scope: dict) -> dict[str, str]:
    return {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope.get("headers", [])}


def origin_allowed(origin: str | None) -> bool:
    """Browsers send Origin; a page from another site must not drive a user's key."""
    if origin is None:
        return True  # not a browser: nothing to protect against
    allowed = settings.WEBSOCKET_ALLOWED_ORIGINS
    return "*" in allowed or origin in allowed


def raw_key_from(scope: dict) -> str | None:
    headers = _headers(scope)
    if "authorization" in headers:
        return parse_bearer(headers["authorization"])
    query = parse_qs(scope.get("query_string", b"").decode())
    return (query.get("api_key") or [None])[0]


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if not origin_allowed(_headers(self.scope).get("origin")):
            await self.close(code=CLOSE_FORBIDDEN_ORIGIN)
            return
        try:
            self.key = await database_sync_to_async(authenticate_raw_key)(raw_key_from(self.scope))
        except APIException:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        chat_id = self.scope["url_route"]["kwargs"]["chat_id"]
        try:
            self.chat = await database_sync_to_async(selectors.chat_access)(
                key=self.key, chat_id=chat_id
            )
        except ApplicationError:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = fanout.group_name(self.chat.id)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUED_SENDS)
        self.current: asyncio.Task | None = None
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        ACTIVE_STREAMS.labels("websocket").inc()
        self.worker = asyncio.create_task(self._work())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "worker"):  # counted once accepted
            ACTIVE_STREAMS.labels("websocket").dec()
        # Stop the generation in progress: its partial text is kept as `interrupted`.
        for task in (getattr(self, "current", None), getattr(self, "worker", None)):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = json.loads(text_data if text_data is not None else bytes_data or b"")
        except ValueError:
            await self._error("malformed_request", "Frames must be JSON objects.")
            return
        if not isinstance(frame, dict):
            await self._error("malformed_request", "Frames must be JSON objects.")
            return
        kind = frame.pop("type", None)
        if kind == "ping":
            await self._send({"type": "pong"})
        elif kind == "cancel":
            if self.current is not None:
                self.current.cancel()
        elif kind == "message.send":
            serializer = SendMessageSerializer(data=frame)
            if not serializer.is_valid():
                await self._error(
                    "validation_error", "Invalid request: see details.", serializer.errors
                )
                return
            try:
                self.queue.put_nowait(serializer.validated_data)
            except asyncio.QueueFull:
                await self._error("busy", "Too many sends queued on this connection.")
        else:
            await self._error(
                "malformed_request",
                "Unknown frame type; use 'message.send', 'cancel' or 'ping'.",
                {"type": kind},
            )

    async def chat_event(self, message: dict[str, Any]) -> None:
        """A chat event from the group (sent by any transport of any process)."""
        if message.get("origin") == self.channel_name:
            return  # our own send: already forwarded as it happened
        await self._forward(message["event"], message["data"], origin="other")

    async def _work(self) -> None:
        while True:
            data = await self.queue.get()
            self.current = asyncio.create_task(self._run_send(data))
            # wait() returns when the send ends, also when it was cancelled by a
            # `cancel` frame, without propagating that cancellation to the worker.
            await asyncio.wait([self.current])
            self.current = None

    async def _run_send(self, data: dict[str, Any]) -> None:
        try:
            # Each send over the socket counts as a request against the key's limits.
            await database_sync_to_async(check_request)(self.key)
            send = conversation.SendInput.from_validated(data)
            turn = await conversation.prepare_turn(chat=self.chat, key=self.key, send=send)
        except ApplicationError as exc:
            await self._send({"type": "error", "error": exc.to_dict()["error"]})
            return
        except ProviderError as exc:
            await self._send({"type": "error", "error": exc.to_dict()})
            return
        except (KeyError, ValueError) as exc:
            await self._error("validation_error", "Invalid tools.", {"tools": [str(exc)]})
            return
        async for name, event in conversation.turn_events(turn, origin=self.channel_name):
            await self._forward(name, event)

    async def _forward(self, name: str, data: dict[str, Any], origin: str | None = None) -> None:
        frame = (
            {"type": "error", "error": dict(data)} if name == "error" else {"type": name, **data}
        )
        if origin:
            frame["origin"] = origin
        await self._send(frame)

    async def _error(self, type_: str, message: str, details: Any = None) -> None:
        await self._send({"type": "error", "error": error_body(type_, message, details)["error"]})

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, default=str, ensure_ascii=False))
