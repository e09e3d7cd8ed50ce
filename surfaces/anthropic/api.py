"""The views: `POST /v1/messages` and `POST /v1/messages/count_tokens`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

import pipeline
from llmwrapper import lane
from llmwrapper.api import principal, validated
from llmwrapper.auth import ApiKeyOrXApiKeyAuthentication
from llmwrapper.openapi import ERROR_DESCRIPTIONS, ApiSchema
from llmwrapper.sse import stream_response
from providers import gateway
from providers.core.types import ChatRequest, GenerationParams
from providers.models import LlmCall
from surfaces import compat
from surfaces.anthropic.errors import AnthropicError, anthropic_error
from surfaces.anthropic.events import Reply
from surfaces.anthropic.wire import (
    CountTokensRequestSerializer,
    MessagesRequestSerializer,
    anthropic_fields,
    conversation,
    estimate_tokens,
    params,
    registry_of,
    targets_of,
)
from tenants.models import ApiKey, Subtenant


class AnthropicErrorBodySerializer(serializers.Serializer):
    type = serializers.CharField(help_text="e.g. `invalid_request_error`, `overloaded_error`.")
    message = serializers.CharField()


class AnthropicErrorSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["error"])
    error = AnthropicErrorBodySerializer()


class TokenCountSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()


_ERROR_STATUSES = {
    400: ERROR_DESCRIPTIONS[400],
    401: ERROR_DESCRIPTIONS[401],
    403: "The key may not do this (an admin key: this API bills a subtenant).",
    404: "Unknown model or provider.",
    413: "Request body, or an image or document, too large.",
    415: ERROR_DESCRIPTIONS[415],
    429: ERROR_DESCRIPTIONS[429],
    500: "A bug in the gateway (logged).",
    502: "The provider failed.",
    504: "The provider did not answer in time.",
    529: "The provider or the gateway is overloaded (see `Retry-After`).",
}
_ERROR_RESPONSES = {
    status: OpenApiResponse(AnthropicErrorSerializer, description=description)
    for status, description in _ERROR_STATUSES.items()
}
_HEADERS = [
    OpenApiParameter(
        "x-api-key", OpenApiTypes.STR, OpenApiParameter.HEADER, description="A subtenant key."
    ),
    OpenApiParameter(
        "anthropic-version", OpenApiTypes.STR, OpenApiParameter.HEADER, description="Ignored."
    ),
    OpenApiParameter(
        "anthropic-beta", OpenApiTypes.STR, OpenApiParameter.HEADER, description="Ignored."
    ),
    OpenApiParameter(
        "Retry-After",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=[429, 529],
        description="Seconds to wait before trying again.",
    ),
]


class _AnthropicSchema(ApiSchema):
    def error_statuses(self) -> list[int]:
        return []  # each operation lists its errors, in Anthropic's shape


class _AnthropicView(compat.CompatView):
    authentication_classes = [ApiKeyOrXApiKeyAuthentication]
    schema = _AnthropicSchema()

    def error_response(self, exc: Exception) -> Response:
        error = anthropic_error(exc)
        return Response(error.body(), status=error.status, headers=error.headers)


def _subtenant(request: Request) -> Subtenant:
    subtenant = principal(request).subtenant
    if subtenant is None:
        raise AnthropicError(
            403, "The Anthropic-compatible API needs a subtenant key (an admin key bills nobody)."
        )
    return subtenant


class MessagesView(_AnthropicView):
    @extend_schema(
        request=MessagesRequestSerializer,
        parameters=_HEADERS,
        responses={
            200: OpenApiResponse(
                description="An Anthropic `message` (or its events over SSE with stream=true)."
            ),
            **_ERROR_RESPONSES,
        },
        summary="Anthropic-compatible Messages: create a message",
        description="Anthropic's Messages API for every provider: `model` is "
        "`provider/model`, an alias or a bare name. Authenticate with a subtenant key in "
        "`x-api-key` or as a Bearer token.",
        tags=["anthropic-compatible"],
        operation_id="v1_messages_create",
    )
    async def post(self, request: Request):  # type: ignore[no-untyped-def]
        fields = validated(MessagesRequestSerializer, request.data)
        reply = await start(fields, _subtenant(request), principal(request).key)
        if fields["stream"]:
            # The model's first event is awaited here, so a failure before any output
            # answers as a plain error (429 with Retry-After: the SDK's RateLimitError).
            await reply.open_stream()
            return stream_response(reply.events())
        return Response(await reply.body())


async def start(fields: dict[str, Any], subtenant: Subtenant, key: ApiKey | None) -> Reply:
    """The turn a validated request asks for, started, in Anthropic's format."""
    turn = await pipeline.start(
        pipeline.TurnSpec(
            subtenant=subtenant,
            api_key=key,
            source=LlmCall.Source.ANTHROPIC,
            model=fields["model"],
            fallbacks=fields.get("fallbacks"),
            messages=conversation(fields, limits=gateway.content_limits()),
            tools=fields.get("tools", ()),
            tool_choice=fields.get("tool_choice"),
            params=params(fields),
            server_tools=compat.server_tools(fields.get("server_tools")),
            vendor_fields={"anthropic": anthropic_fields(fields)},
        )
    )
    return Reply(fields["model"], turn)


async def lane_messages(call: lane.Call) -> lane.Answer | None:
    """`POST /v1/messages` on the hot lane (`llmwrapper.lane`): what the view answers,
    for a valid request with a subtenant key (the rest is the view's)."""
    subtenant = call.key.subtenant
    if subtenant is None:
        return None
    fields = lane.valid_fields(call, MessagesRequestSerializer)
    if fields is None:
        return None
    reply = await start(fields, subtenant, call.key)
    if fields["stream"]:
        await reply.open_stream()
        return lane.stream_answer(reply.events())
    return lane.json_answer(200, await reply.body())


def lane_error(exc: Exception) -> lane.Answer:
    """`exc` answered on the hot lane in Anthropic's shape, as the views answer it."""
    error = anthropic_error(exc)
    return lane.json_answer(error.status, error.body(), error.headers)


class CountTokensView(_AnthropicView):
    @extend_schema(
        request=CountTokensRequestSerializer,
        parameters=[
            *_HEADERS,
            OpenApiParameter(
                "X-Token-Count",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[200],
                enum=["exact", "estimate"],
                description="`exact`: counted by the vendor (Anthropic); `estimate`: the "
                "gateway's estimate (README: Anthropic-compatible API).",
            ),
        ],
        responses={200: TokenCountSerializer, **_ERROR_RESPONSES},
        summary="Anthropic-compatible Messages: count a request's input tokens",
        description="Counted by the vendor where it can (Anthropic), estimated otherwise; "
        "`X-Token-Count` says which.",
        tags=["anthropic-compatible"],
        operation_id="v1_messages_count_tokens",
    )
    async def post(self, request: Request) -> Response:
        fields = validated(CountTokensRequestSerializer, request.data)
        messages = conversation(fields, limits=gateway.content_limits())
        # Prepared as a turn with no messages (the model resolved as a send's would be,
        # the tenant's limits checked), and never run.
        turn = await pipeline.start(
            pipeline.TurnSpec(
                subtenant=_subtenant(request),
                api_key=principal(request).key,
                source=LlmCall.Source.ANTHROPIC,
                model=fields["model"],
                fallbacks=[],
                server_tools=False,
            )
        )
        tools = fields.get("tools", ())
        # A route counts as its first deployment (which usually answers).
        connection, model = (targets_of(turn.target) or [("", "")])[0]
        provider = registry_of(turn).get(connection) if connection else None
        count = getattr(provider, "count_tokens", None)
        if count is None:
            tokens, how = estimate_tokens(messages, tools), "estimate"
        else:
            extra = {"thinking": fields["thinking"]} if "thinking" in fields else {}
            counted = ChatRequest(
                model=model,
                messages=messages,
                tools=tools,
                tool_choice=fields.get("tool_choice"),
                params=GenerationParams(extra=extra),
            )
            tokens, how = await count(counted), "exact"
        return Response({"input_tokens": tokens}, headers={"X-Token-Count": how})
