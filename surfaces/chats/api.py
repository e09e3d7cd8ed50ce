"""Sending messages: `POST /chats/{id}/messages` (sync) and `/messages/stream` (SSE).

Both run the same turn (the pipeline, formatted by surfaces.chats.turns); the sync view collects
its events, the SSE view encodes them. An `Idempotency-Key` header makes a retried send return the
original outcome instead of sending twice.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

import pipeline
from chats import leases, selectors, services
from chats.models import Chat, IdempotencyRecord
from chats.serializers import MessageSerializer, SendMessageSerializer
from llmwrapper import db, lane
from llmwrapper.api import paginated, principal, validated
from llmwrapper.async_views import AsyncAPIView
from llmwrapper.errors import ValidationFailedError
from llmwrapper.renderers import STREAM_RENDERERS
from llmwrapper.sse import encoded, sse_response
from surfaces.chats import turns
from tenants.models import ApiKey

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Retrying with the same key (and body) returns the original outcome.",
)
SEND_RESPONSE = inline_serializer(
    "ChatSendResult",
    {
        "chat_id": serializers.UUIDField(),
        "message": serializers.DictField(help_text="The final assistant message."),
        "messages": serializers.ListField(
            child=serializers.DictField(), help_text="Assistant and tool messages of this turn."
        ),
        "input_messages": serializers.ListField(
            child=serializers.DictField(), help_text="The user (or tool result) messages stored."
        ),
        "usage": serializers.DictField(),
        "finish_reason": serializers.CharField(),
        "provider": serializers.CharField(),
        "model": serializers.CharField(),
        "tool_calls": serializers.ListField(
            child=serializers.DictField(), help_text="Calls for the client to run."
        ),
        "round_limit_reached": serializers.BooleanField(),
    },
)


class _SendBase(AsyncAPIView):
    # Authentication, the chat's lookup, the Idempotency-Key's claim and the turn's
    # first write share one connection, handed back before the model is called.
    keeps_connection = True

    async def _start(self, request: Request, chat_pk: Any) -> ClaimedSend:
        key = principal(request).key
        chat = await access(key, chat_pk)
        data = validated(SendMessageSerializer, request.data)
        idempotency_key = request.headers.get("Idempotency-Key")
        return await start_send(key, chat, data, body=request.data, idempotency_key=idempotency_key)


@dataclass(slots=True)
class ClaimedSend:
    """A send checked and claimed: its turn's spec, and its Idempotency-Key's record."""

    spec: pipeline.TurnSpec
    record: IdempotencyRecord | None

    @property
    def replayed(self) -> dict[str, Any] | None:
        """The outcome of an earlier send with the same Idempotency-Key, if it ended."""
        record = self.record
        if record is not None and record.status == IdempotencyRecord.Status.DONE:
            return record.response
        return None

    async def turn(self) -> pipeline.Turn:
        try:
            return await pipeline.start(self.spec)
        except Exception:
            if self.record is not None:
                await db.run(services.idempotency_finish, record=self.record, response=None)
            raise

    async def result(self) -> tuple[dict[str, Any], int, dict[str, str] | None]:
        """The send's outcome as the sync endpoint answers it: body, status, headers."""
        replayed = self.replayed
        if replayed is not None:
            return replayed, 200, {"Idempotent-Replayed": "true"}
        turn = await self.turn()
        result: dict[str, Any] = {}
        status, headers = 200, None
        # Streamed from the vendor even here: viewers of the chat watch it arrive.
        async for name, data in _remember(turns.chat_events(turn), self.record):
            if name == "message.completed":
                result = data
            elif name == "error":
                result, status = {"error": dict(data)}, getattr(data, "status", 502)
                headers = getattr(data, "headers", None)
        return result, status, headers

    async def events(self) -> tuple[AsyncIterator[tuple[str, dict]], dict[str, str] | None]:
        """The send's events as the streaming endpoint sends them, and its headers."""
        replayed = self.replayed
        if replayed is not None:
            return _replay(replayed), {"Idempotent-Replayed": "true"}
        return _remember(turns.chat_events(await self.turn()), self.record), None


async def access(key: ApiKey, chat_pk: Any) -> Chat:
    """The chat a send goes to (404 for one the key may not reach), its connection kept
    for the send's first write."""
    return await db.run(selectors.chat_access, key=key, chat_id=chat_pk, keep=True)


async def start_send(
    key: ApiKey, chat: Chat, data: dict[str, Any], *, body: Any, idempotency_key: str | None
) -> ClaimedSend:
    """Check a send of `data` (`body` validated) to `chat` and claim its
    Idempotency-Key: what both send endpoints do before the turn."""
    try:
        spec = turns.send_spec(chat=chat, key=key, data=data)
    except (KeyError, ValueError) as exc:
        raise ValidationFailedError("Invalid tools.", details={"tools": [str(exc)]}) from exc
    record = None
    if idempotency_key:
        if len(idempotency_key) > 255:
            raise ValidationFailedError("Idempotency-Key is too long (255 characters at most).")
        record = await db.run(
            services.idempotency_claim,
            keep=True,
            chat=chat,
            key=idempotency_key,
            fingerprint=services.request_fingerprint(body),
        )
    return ClaimedSend(spec, record)


async def _remember(
    events: AsyncIterator[tuple[str, dict]], record: IdempotencyRecord | None
) -> AsyncIterator[tuple[str, dict]]:
    """Pass events through, storing the completion for Idempotency-Key replays."""
    completed: dict[str, Any] | None = None
    if record is not None:
        leases.hold(records=(record.id,))
    try:
        async for name, data in events:
            if name == "message.completed":
                completed = data
            yield name, data
    finally:
        if record is not None:
            try:
                await db.run(
                    services.idempotency_finish,
                    retry_for=settings.DATABASE_RETRY_SECONDS,
                    record=record,
                    response=completed,
                )
            finally:
                leases.release(records=(record.id,))


class SendMessageView(_SendBase):
    @extend_schema(
        request=SendMessageSerializer,
        responses={200: SEND_RESPONSE},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Send a message (sync)",
        tags=["chats"],
    )
    async def post(self, request: Request, chat_pk: str) -> Response:
        result, status, headers = await (await self._start(request, chat_pk)).result()
        return Response(result, status=status, headers=headers)


class StreamMessageView(_SendBase):
    renderer_classes = STREAM_RENDERERS

    @extend_schema(
        request=SendMessageSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                description="Server-Sent Events: message.created, delta, tool_call, tool_result, "
                "then exactly one of message.completed or error."
            )
        },
        summary="Send a message (streaming)",
        tags=["chats"],
    )
    async def post(self, request: Request, chat_pk: str):  # type: ignore[no-untyped-def]
        events, headers = await (await self._start(request, chat_pk)).events()
        return sse_response(events, headers=headers)


async def _replay(completed: dict[str, Any]) -> AsyncIterator[tuple[str, dict]]:
    yield (
        "message.created",
        {
            "chat_id": completed["chat_id"],
            "input_messages": completed["input_messages"],
            "message": completed["message"],
        },
    )
    yield "message.completed", completed


def _list_messages(request: Request, chat_pk: str) -> Response:
    chat = selectors.chat_access(key=principal(request).key, chat_id=chat_pk)
    return paginated(request, selectors.message_list(chat=chat), MessageSerializer)


class MessagesView(SendMessageView):
    """`/chats/{id}/messages`: GET lists them (oldest first, paginated); POST sends one."""

    @extend_schema(
        responses={200: MessageSerializer(many=True)},
        parameters=[
            OpenApiParameter("limit", int, description="Page size (default 50, max 200)."),
            OpenApiParameter("offset", int, description="Messages to skip."),
        ],
        summary="List messages",
        tags=["chats"],
    )
    async def get(self, request: Request, chat_pk: str) -> Response:
        return await sync_to_async(_list_messages)(request, chat_pk)


# The hot lane (`llmwrapper.lane`): the same sends, for a valid body.


async def _lane_start(call: lane.Call) -> ClaimedSend | None:
    data = lane.valid_fields(call, SendMessageSerializer)
    if data is None:
        return None  # the view says what is wrong (or that the chat is not there)
    chat = await access(call.key, uuid.UUID(call.params["chat_pk"]))
    idempotency_key = call.headers.get(b"idempotency-key")
    return await start_send(
        call.key,
        chat,
        data,
        body=call.data,
        idempotency_key=idempotency_key.decode("latin1") if idempotency_key else None,
    )


async def lane_send(call: lane.Call) -> lane.Answer | None:
    """`POST /api/v1/chats/{id}/messages` on the hot lane."""
    send = await _lane_start(call)
    if send is None:
        return None
    result, status, headers = await send.result()
    return lane.json_answer(status, result, headers)


async def lane_stream_send(call: lane.Call) -> lane.Answer | None:
    """`POST /api/v1/chats/{id}/messages/stream` on the hot lane."""
    send = await _lane_start(call)
    if send is None:
        return None
    events, headers = await send.events()
    return lane.stream_answer(encoded(events), headers)
