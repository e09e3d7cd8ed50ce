"""OpenAI's Responses API: `POST /v1/responses`, `GET|DELETE /v1/responses/{id}`.

The `openai` SDK's `client.responses` works against `<gateway>/v1` unchanged, for
every provider: the request runs through the turn pipeline like every other surface,
errors come in OpenAI's shape (see `surfaces.openai_chat`).
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

import pipeline
from llmwrapper import db, lane
from llmwrapper.api import principal, validated
from llmwrapper.sse import stream_response
from surfaces.openai_chat import _OpenAIView, _subtenant, billed
from surfaces.responses import service, store, wire
from surfaces.responses.events import ResponseStream


class ResponseRequestSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=240)
    input = serializers.JSONField(
        help_text="A string, or input items: messages (input_text, input_image, input_file "
        "parts), function_call and function_call_output items."
    )
    instructions = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    tools = serializers.ListField(child=serializers.JSONField(), required=False, max_length=128)
    tool_choice = serializers.JSONField(required=False)
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    max_output_tokens = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=1_000_000
    )
    stream = serializers.BooleanField(required=False, default=False)
    store = serializers.BooleanField(required=False, default=True)
    previous_response_id = serializers.CharField(required=False, allow_null=True, max_length=80)
    metadata = serializers.DictField(required=False, allow_null=True)
    parallel_tool_calls = serializers.BooleanField(required=False, allow_null=True)
    text = serializers.DictField(required=False, allow_null=True)
    user = serializers.CharField(required=False, max_length=256)
    fallbacks = serializers.ListField(
        child=serializers.CharField(max_length=240), required=False, max_length=5
    )
    # Other fields (reasoning, truncation, include, ...) are accepted and ignored.

    def validate_input(self, value: Any) -> Any:
        if isinstance(value, str) or (isinstance(value, list) and value):
            return value
        raise serializers.ValidationError("Must be a string or a non-empty list of input items.")


RESPONSE_SCHEMA = OpenApiResponse(
    description="An OpenAI `response` object (or its events over SSE with stream=true)."
)


class ResponsesView(_OpenAIView):
    @extend_schema(
        request=ResponseRequestSerializer,
        responses={200: RESPONSE_SCHEMA},
        summary="OpenAI Responses: create a response",
        tags=["openai-compatible"],
        operation_id="v1_responses_create",
    )
    async def post(self, request: Request):  # type: ignore[no-untyped-def]
        fields = validated(ResponseRequestSerializer, request.data)
        started = await service.start(
            fields,
            subtenant=_subtenant(request),
            api_key=principal(request).key,
            chat_header=request.headers.get("X-Chat-ID"),
        )
        if fields["stream"]:
            # The model's first event is awaited here: a failure before any output
            # answers as a plain error (the SDK raises its own exception type).
            opened = await pipeline.OpenedStream.open(started.turn)
            return stream_response(ResponseStream(started.response).events(opened))
        return Response(await _body(started))


async def lane_create(call: lane.Call) -> lane.Answer | None:
    """`POST /v1/responses` on the hot lane (`llmwrapper.lane`): what the view answers,
    for a valid request (the rest is the view's)."""
    fields = lane.valid_fields(call, ResponseRequestSerializer)
    if fields is None:
        return None
    started = await service.start(
        fields, subtenant=billed(call.key), api_key=call.key, chat_header=None
    )
    if fields["stream"]:
        opened = await pipeline.OpenedStream.open(started.turn)
        return lane.stream_answer(ResponseStream(started.response).events(opened))
    return lane.json_answer(200, await _body(started))


async def _body(started: service.Started) -> dict[str, Any]:
    completed: pipeline.Completed | None = None
    first_message: object = None
    async with aclosing(started.turn.events(streaming=False)) as events:
        async for event in events:
            if isinstance(event, pipeline.Failed):
                raise event.error.exc
            if isinstance(event, pipeline.Started):
                first_message = event.message
            elif isinstance(event, pipeline.Completed):
                completed = event
    assert completed is not None
    calls = completed.turn.pending_tool_calls
    output = wire.output_items(completed.text, calls, first_message)
    return wire.finished(started.response, completed.turn, output)


class ResponseDetailView(_OpenAIView):
    @extend_schema(
        responses={200: RESPONSE_SCHEMA, 404: OpenApiResponse(description="No such response.")},
        summary="OpenAI Responses: read a stored response",
        tags=["openai-compatible"],
        operation_id="v1_responses_retrieve",
    )
    async def get(self, request: Request, response_id: str) -> Response:
        return Response(await db.run(store.read, _subtenant(request), response_id))

    @extend_schema(
        responses={200: OpenApiResponse(description="`{id, object, deleted: true}`")},
        summary="OpenAI Responses: delete a stored response",
        tags=["openai-compatible"],
        operation_id="v1_responses_destroy",
    )
    async def delete(self, request: Request, response_id: str) -> Response:
        return Response(await db.run(store.delete, _subtenant(request), response_id))
