"""`/ws/chats/{id}/` (the trailing slash is optional): send messages and watch a chat
live over a WebSocket.

Frames from the client are JSON objects with a `type`:
- `message.send`: the same fields as `POST /chats/{id}/messages` (content: text, or
  content parts with images and documents; include_memories, memory_keys, tools,
  functions, tool_results, provider, model, ...).
  Sends are handled one after another, in the order they arrive. The key is checked
  again before each one (through the same short cache as HTTP).
- `cancel`: stop the send in progress. Its partial text is kept as `interrupted`, and
  it ends like every send with one terminal frame: `message.completed` with
  `"status": "interrupted"`.
- `ping`: answered with `pong`.

Frames to the client are the SSE events as JSON with a `type` field
(`message.created`, `delta`, `tool_call`, `tool_result`, `message.completed`),
and `{"type": "error", "error": {type, message, details}}`. Events of messages sent on
this chat by anyone else (HTTP, another socket) arrive too, with `"origin": "other"`.
A frame that cannot be handled gets an `error` frame; the socket stays open.

A socket that cannot be served is accepted, sent an `error` frame, and closed with a
code: 4001 unauthenticated (also when the key is revoked or its subtenant deactivated
while the socket is open), 4003 origin not allowed, 4004 chat not found.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings
from rest_framework.exceptions import APIException, NotAuthenticated, ValidationError

import pipeline
from chats import fanout, selectors
from chats.serializers import SendMessageSerializer
from llmwrapper import safejson
from llmwrapper.api import validated
from llmwrapper.auth import authenticate_raw_key, parse_bearer
from llmwrapper.errors import ApplicationError, error_body
from llmwrapper.observability.metrics import ACTIVE_STREAMS
from providers.core.error_base import GatewayError
from surfaces.chats import turns
from tenants.limits import check_request

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4001
CLOSE_FORBIDDEN_ORIGIN = 4003
CLOSE_NOT_FOUND = 4004
CLOSE_INTERNAL_ERROR = 1011
MAX_QUEUED_SENDS = 8
TERMINAL_EVENTS = ("message.completed", "error")
MESSAGE_500 = "Internal server error."


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


def _unauthenticated(exc: APIException) -> dict[str, Any]:
    message = str(exc.detail)
    if isinstance(exc, NotAuthenticated):
        message = "Missing API key: send 'Authorization: Bearer <key>' or '?api_key=<key>'."
    return error_body("unauthenticated", message)


@dataclass
class _Send:
    """One `message.send` in progress, as this socket has seen it."""

    task: asyncio.Task | None = None
    turn: pipeline.Turn | None = None
    started: bool = False  # its first `message.created` went out: cancel may interrupt it
    cancel_requested: bool = False
    ending: bool = False  # its terminal event is on its way: too late to cancel
    ended: bool = False
    last_message_id: str | None = None

    def cancel(self) -> None:
        self.cancel_requested = True
        if self.started and not self.ending and self.task is not None:
            self.task.cancel()

    def saw(self, name: str, data: dict[str, Any]) -> None:
        if name == "message.created":
            self.started = True
            self.last_message_id = str(data["message"]["id"])
        elif name == "tool_result":
            self.last_message_id = str(data["message_id"])
        elif name in TERMINAL_EVENTS:
            self.ending = True


class ChatConsumer(AsyncWebsocketConsumer):
    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Channels' consumer loop, except that the layer's receive waits out layer
        outages, and that the gauge and the cleanup run however the socket ends."""
        self.scope, self.base_send = scope, send
        self.counted = self.accepted = self.ready = self.refused = self.closed_down = False
        self.active: _Send | None = None
        self.worker: asyncio.Task | None = None
        self.group: str | None = None
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            sources.append(lambda: fanout.receive(self.channel_name))
        try:
            await await_many_dispatch(sources, self.dispatch)
        except StopConsumer:
            pass
        finally:
            await self._close_down()  # normally done already, on the disconnect

    async def dispatch(self, message: dict[str, Any]) -> None:
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except OSError:  # the server could not send: the client is gone, a disconnect follows
            logger.debug("chat socket closed while handling %s", message.get("type"))
        except Exception:
            logger.exception("chat socket failed handling %s", message.get("type"))
            if not self.accepted:  # failed before answering the handshake
                await self.accept()
            if self.ready:
                await self._error("internal_error", MESSAGE_500)
            elif not self.refused:  # failed while connecting
                await self._refuse(CLOSE_INTERNAL_ERROR, error_body("internal_error", MESSAGE_500))

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol, headers)
        self.accepted = self.counted = True
        ACTIVE_STREAMS.labels("websocket").inc()

    async def connect(self) -> None:
        refusal = await self._refusal()
        await self.accept()
        if refusal is not None:
            await self._refuse(*refusal)
            return
        self.group = fanout.group_name(self.chat.id)
        await fanout.join(self.group, self.channel_name)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUED_SENDS)
        self.worker = asyncio.create_task(self._work())
        self.ready = True

    async def _refusal(self) -> tuple[int, dict[str, Any]] | None:
        """Why this socket cannot be served, as (close code, error body), or None."""
        origin = _headers(self.scope).get("origin")
        if not origin_allowed(origin):
            body = error_body(
                "permission_denied",
                "This origin may not open chat WebSockets (WEBSOCKET_ALLOWED_ORIGINS).",
                {"origin": origin},
            )
            return CLOSE_FORBIDDEN_ORIGIN, body
        self.raw_key = raw_key_from(self.scope)
        try:
            self.key = await database_sync_to_async(authenticate_raw_key)(self.raw_key)
        except APIException as exc:
            return CLOSE_UNAUTHENTICATED, _unauthenticated(exc)
        chat_id = self.scope["url_route"]["kwargs"]["chat_id"]
        try:
            self.chat = await database_sync_to_async(selectors.chat_access)(
                key=self.key, chat_id=chat_id
            )
        except ApplicationError as exc:
            return CLOSE_NOT_FOUND, {"error": exc.to_dict()}
        return None

    async def _refuse(self, code: int, body: dict[str, Any]) -> None:
        self.ready, self.refused = False, True
        await self._send({"type": "error", "error": body["error"]})
        await self.close(code=code)

    async def _key_still_valid(self) -> bool:
        """Re-check the key (cached like HTTP's); on failure the socket is closed, 4001."""
        try:
            self.key = await database_sync_to_async(authenticate_raw_key)(self.raw_key)
        except APIException as exc:
            await self._refuse(CLOSE_UNAUTHENTICATED, _unauthenticated(exc))
            return False
        return True

    async def disconnect(self, code: int) -> None:
        await self._close_down()

    async def _close_down(self) -> None:
        """Uncount the socket, stop the send in progress (its partial text is kept as
        `interrupted`) and the worker, and leave the fan-out group. Runs once."""
        if self.closed_down:
            return
        self.closed_down, self.ready = True, False
        if self.counted:
            self.counted = False
            ACTIVE_STREAMS.labels("websocket").dec()
        tasks = [t for t in (self.active.task if self.active else None, self.worker) if t]
        for task in tasks:
            task.cancel()
        if self.group is not None:
            await fanout.leave(self.group, self.channel_name)
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("chat socket task failed while closing")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.ready:
            return
        try:
            frame = safejson.loads(text_data if text_data is not None else bytes_data or b"")
        except safejson.UnsafeJsonError as exc:
            if exc.reason == "invalid_text":
                await self._error("validation_error", exc.message, {"reason": exc.reason})
            else:
                await self._error("malformed_request", exc.message, {"reason": exc.reason})
            return
        if not isinstance(frame, dict):
            await self._error("malformed_request", "Frames must be JSON objects.")
            return
        kind = frame.pop("type", None)
        if kind == "ping":
            await self._send({"type": "pong"})
        elif kind == "cancel":
            if self.active is not None:
                self.active.cancel()
        elif kind == "message.send":
            try:
                data = validated(SendMessageSerializer, frame)
            except GatewayError as exc:  # an image or document refused (400) or too large
                await self._send({"type": "error", "error": exc.to_dict()})
                return
            except ValidationError as exc:
                await self._error("validation_error", "Invalid request: see details.", exc.detail)
                return
            try:
                self.queue.put_nowait(data)
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
        if not self.ready or message.get("origin") == self.channel_name:
            return  # closing, or our own send: already forwarded as it happened
        # A new message is a new right to read: the key must still have it.
        if message["event"] == "message.created" and not await self._key_still_valid():
            return
        await self._forward(message["event"], message["data"], origin="other")

    async def _work(self) -> None:
        while self.ready:
            data = await self.queue.get()
            try:
                allowed = await self._key_still_valid()
            except Exception:
                logger.exception("chat socket could not check its key")
                await self._error("internal_error", MESSAGE_500)
                continue
            if not allowed:
                return
            send = self.active = _Send()
            send.task = asyncio.create_task(self._run_send(data, send))
            # wait() returns when the send ends, also when it was cancelled by a
            # `cancel` frame, without propagating that cancellation to the worker.
            await asyncio.wait([send.task])
            self.active = None
            if not send.ended:
                await self._end_unfinished(send)

    async def _run_send(self, data: dict[str, Any], send: _Send) -> None:
        try:
            # Each send over the socket counts as a request against the key's limits.
            await database_sync_to_async(check_request)(self.key)
            send.turn = await pipeline.start(
                turns.send_spec(chat=self.chat, key=self.key, data=data)
            )
        except (KeyError, ValueError) as exc:
            # Before the base: bad tools (McpConfigError too) answer as they always have.
            body = error_body("validation_error", "Invalid tools.", {"tools": [str(exc)]})
            await self._own_event(send, "error", body["error"])
            return
        except GatewayError as exc:
            await self._own_event(send, "error", exc.to_dict())
            return
        events = turns.chat_events(send.turn, origin=self.channel_name)
        async with aclosing(events):
            async for name, event in events:
                await self._own_event(send, name, event)
                if send.cancel_requested and not send.ending:
                    break  # cancelled before its stream started: the message is interrupted

    async def _own_event(self, send: _Send, name: str, data: dict[str, Any]) -> None:
        send.saw(name, data)
        await self._forward(name, data)
        if name in TERMINAL_EVENTS:
            send.ended = True

    async def _end_unfinished(self, send: _Send) -> None:
        """Give a send that stopped without its terminal frame one, here and to viewers."""
        failure = None if send.task is None or send.task.cancelled() else send.task.exception()
        name, data = "error", error_body("internal_error", MESSAGE_500)["error"]
        if send.last_message_id:
            data["details"] = {"message_id": send.last_message_id}
        stopped = send.turn.interrupted() if send.turn is not None else None
        if failure is not None:
            logger.error("chat socket send failed", exc_info=failure)
        elif send.cancel_requested and stopped is not None:
            name, data = (
                "message.completed",
                turns.interrupted_completion(str(self.chat.id), stopped),
            )
        if send.started:
            await fanout.publish(self.chat.id, name, data, origin=self.channel_name)
        with contextlib.suppress(Exception):  # the socket may be gone with the failure
            await self._forward(name, data)

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
