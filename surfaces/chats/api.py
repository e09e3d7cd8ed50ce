"""Sending messages: `POST /chats/{id}/messages` (sync) and `/messages/stream` (SSE).

Both run the same turn (the pipeline, formatted by surfaces.chats.turns); the sync view collects
its events, the SSE view encodes them. An `Idempotency-Key` header makes a retried send return the
original outcome instead of sending twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from chats.models import IdempotencyRecord
from chats.serializers import MessageSerializer, SendMessageSerializer
from llmwrapper import db
from llmwrapper.api import paginated, principal, validated
from llmwrapper.async_views import AsyncAPIView
from llmwrapper.errors import ValidationFailedError
from llmwrapper.renderers import STREAM_RENDERERS
from llmwrapper.sse import sse_response
from surfaces.chats import turns

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

    async def _start(
        self, request: Request, chat_pk: str
    ) -> tuple[pipeline.TurnSpec, IdempotencyRecord | None]:
        key = principal(request).key
        chat = await db.run(selectors.chat_access, key=key, chat_id=chat_pk, keep=True)
        data = validated(SendMessageSerializer, request.data)
        try:
            spec = turns.send_spec(chat=chat, key=key, data=data)
        except (KeyError, ValueError) as exc:
            raise ValidationFailedError("Invalid tools.", details={"tools": [str(exc)]}) from exc
        record = None
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key:
            if len(idempotency_key) > 255:
                raise ValidationFailedError("Idempotency-Key is too long (255 characters at most).")
            record = await db.run(
                services.idempotency_claim,
                keep=True,
                chat=chat,
                key=idempotency_key,
                fingerprint=services.request_fingerprint(request.data),
            )
        return spec, record

    async def _turn(
        self, spec: pipeline.TurnSpec, record: IdempotencyRecord | None
    ) -> pipeline.Turn:
        try:
            return await pipeline.start(spec)
        except Exception:
            if record is not None:
                await db.run(services.idempotency_finish, record=record, response=None)
            raise


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
        spec, record = await self._start(request, chat_pk)
        if record is not None and record.status == IdempotencyRecord.Status.DONE:
            return Response(record.response, headers={"Idempotent-Replayed": "true"})
        turn = await self._turn(spec, record)
        result: dict[str, Any] = {}
        status, headers = 200, None
        # Streamed from the vendor even here: viewers of the chat watch it arrive.
        async for name, data in _remember(turns.chat_events(turn), record):
            if name == "message.completed":
                result = data
            elif name == "error":
                result, status = {"error": dict(data)}, getattr(data, "status", 502)
                headers = getattr(data, "headers", None)
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
        spec, record = await self._start(request, chat_pk)
        if record is not None and record.status == IdempotencyRecord.Status.DONE:
            return sse_response(_replay(record.response), headers={"Idempotent-Replayed": "true"})
        turn = await self._turn(spec, record)
        return sse_response(_remember(turns.chat_events(turn), record))


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
