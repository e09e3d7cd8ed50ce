"""Direct LLM access: `/api/v1/llm/complete`, `/api/v1/llm/stream`, `/api/v1/llm/models`."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from asgiref.sync import sync_to_async
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

import pipeline
from llmwrapper import lane
from llmwrapper.api import StrictSerializer, principal, validated
from llmwrapper.async_views import AsyncAPIView
from llmwrapper.renderers import STREAM_RENDERERS
from llmwrapper.sse import encoded, sse_response
from llmwrapper.tenancy import abilled_subtenant, named_subtenant
from providers import gateway
from providers.core import wire
from providers.core.errors import ProviderError
from providers.core.tooling import tool_specs_from_openai
from providers.core.types import ToolSpec
from providers.request_fields import GenerationFieldsMixin, MessageInputSerializer
from surfaces.llm import direct
from tenants.models import ApiKey, Subtenant


class CompletionRequestSerializer(StrictSerializer, GenerationFieldsMixin):
    messages = MessageInputSerializer(many=True, allow_empty=False, max_length=10_000)
    provider = serializers.CharField(required=False, allow_blank=True, max_length=32)
    model = serializers.CharField(required=False, allow_blank=True, max_length=200)
    fallbacks = serializers.ListField(
        child=serializers.CharField(max_length=240), required=False, max_length=5
    )
    subtenant = serializers.UUIDField(
        required=False, help_text="Which subtenant the call is for: required with an admin key."
    )


async def start_direct_turn(request: Request) -> pipeline.Turn:
    data = validated(CompletionRequestSerializer, request.data)
    caller = principal(request)
    subtenant = await abilled_subtenant(request, data.get("subtenant"))
    try:
        tools = tool_specs_from_openai(data.get("tools"), data.get("functions"))
    except (KeyError, ValueError) as exc:
        raise serializers.ValidationError({"tools": [str(exc)]}) from exc
    return await pipeline.start(_spec(data, caller.key, subtenant, tools))


def _spec(
    data: dict[str, Any], key: ApiKey, subtenant: Subtenant, tools: tuple[ToolSpec, ...]
) -> pipeline.TurnSpec:
    server_tools = data.get("server_tools")
    return pipeline.TurnSpec(
        subtenant=subtenant,
        api_key=key,
        source="direct",
        provider=data.get("provider"),
        model=data.get("model"),
        fallbacks=data.get("fallbacks"),
        messages=wire.messages_from_api(data["messages"], limits=gateway.content_limits()),
        tools=tools,
        tool_choice=data.get("tool_choice"),
        params=data,
        server_tools=None if server_tools is True else server_tools,
    )


def _lane_spec(call: lane.Call) -> pipeline.TurnSpec | None:
    """The turn a request on the hot lane asks for; None leaves the request to the view
    (it says what is wrong, or looks up the subtenant an admin key names)."""
    subtenant = call.key.subtenant
    data = lane.valid_fields(call, CompletionRequestSerializer) if subtenant else None
    if data is None or data.get("subtenant"):
        return None
    try:
        tools = tool_specs_from_openai(data.get("tools"), data.get("functions"))
    except (KeyError, ValueError):
        return None
    return _spec(data, call.key, subtenant, tools)


async def lane_complete(call: lane.Call) -> lane.Answer | None:
    """`POST /api/v1/llm/complete` on the hot lane (`llmwrapper.lane`)."""
    spec = _lane_spec(call)
    if spec is None:
        return None
    return lane.json_answer(200, await direct.direct_body(await pipeline.start(spec)))


async def lane_stream(call: lane.Call) -> lane.Answer | None:
    """`POST /api/v1/llm/stream` on the hot lane (`llmwrapper.lane`)."""
    spec = _lane_spec(call)
    if spec is None:
        return None
    turn = await pipeline.start(spec)
    return lane.stream_answer(encoded(direct.direct_events(turn)))


COMPLETION_RESPONSE = inline_serializer(
    "DirectCompletion",
    {
        "id": serializers.UUIDField(),
        "provider": serializers.CharField(),
        "model": serializers.CharField(),
        "message": serializers.DictField(),
        "tool_calls": serializers.ListField(child=serializers.DictField()),
        "tool_results": serializers.ListField(child=serializers.DictField()),
        "finish_reason": serializers.CharField(),
        "usage": serializers.DictField(),
        "rounds": serializers.IntegerField(),
    },
)


class CompleteView(AsyncAPIView):
    @extend_schema(
        request=CompletionRequestSerializer,
        responses={200: COMPLETION_RESPONSE},
        summary="Direct completion",
        tags=["llm"],
    )
    async def post(self, request: Request) -> Response:
        return Response(await direct.direct_body(await start_direct_turn(request)))


class StreamView(AsyncAPIView):
    renderer_classes = STREAM_RENDERERS

    @extend_schema(
        request=CompletionRequestSerializer,
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                description="Server-Sent Events: message.created, delta, tool_call, "
                "tool_result, then exactly one of message.completed or error."
            )
        },
        summary="Direct streaming completion",
        tags=["llm"],
    )
    async def post(self, request: Request):  # type: ignore[no-untyped-def]
        # Started before the stream opens: configuration errors and limits are a plain
        # 4xx rather than an error event.
        return sse_response(direct.direct_events(await start_direct_turn(request)))


class ModelsView(AsyncAPIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "ProviderModels",
                {
                    "default_provider": serializers.CharField(),
                    "providers": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
        summary="Providers and their models",
        tags=["llm"],
    )
    async def get(self, request: Request) -> Response:
        from django.conf import settings

        # The caller's view: the built-in providers and the connections it can use.
        view = await gateway.view_for(principal(request).subtenant)
        registry = view.registry
        rows = await asyncio.gather(*(_provider_row(view, name) for name in registry.names()))
        routes = [
            {"name": name, "deployments": [dataclasses.asdict(d) for d in route.deployments]}
            for name, route in view.routes.items()
        ]
        return Response(
            {
                "default_provider": settings.DEFAULT_LLM_PROVIDER,
                "providers": rows,
                "routes": routes,
            }
        )


async def _provider_row(view: gateway.View, name: str) -> dict[str, Any]:
    registry = view.registry
    config = registry.config(name)
    capabilities = gateway.capabilities(name, view)
    row: dict[str, Any] = {
        "name": name,
        "kind": config.kind,
        "configured": registry.is_configured(name),
        "default_model": config.default_model,
        "models": [],
        # What the vendor accepts, as its adapter describes it.
        "capabilities": dataclasses.asdict(capabilities) if capabilities else {},
    }
    if view.models.get(name):
        row["models"] = list(view.models[name])
    elif row["configured"]:
        try:
            row["models"] = await asyncio.wait_for(registry.get(name).list_models(), 10)
        except ProviderError as exc:
            row["error"] = exc.to_dict()
        except TimeoutError:
            row["error"] = {"type": "provider_timeout", "message": "Listing models timed out."}
    return row


class UsageQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First day (UTC), default 30 days ago.")
    end = serializers.DateField(required=False, help_text="Last day (UTC), default today.")

    MAX_DAYS = 366

    def validate(self, attrs: dict) -> dict:
        import datetime as dt

        attrs.setdefault("end", dt.datetime.now(dt.UTC).date())
        if "start" not in attrs:
            # Near year 1 the default window is cut at the first representable day.
            days = min(30, (attrs["end"] - dt.date.min).days)
            attrs["start"] = attrs["end"] - dt.timedelta(days=days)
        if attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"start": ["Must not be after 'end'."]})
        if (attrs["end"] - attrs["start"]).days > self.MAX_DAYS:
            raise serializers.ValidationError(
                {"start": [f"A report covers at most {self.MAX_DAYS} days."]}
            )
        return attrs


class UsageView(AsyncAPIView):
    @extend_schema(
        parameters=[UsageQuerySerializer],
        responses={
            200: inline_serializer(
                "UsageReport",
                {
                    "subtenant": serializers.UUIDField(),
                    "start": serializers.DateField(),
                    "end": serializers.DateField(),
                    "totals": serializers.DictField(
                        help_text="calls, errors, input_tokens, output_tokens, "
                        "total_tokens, cost_usd (USD as a decimal string; null when no "
                        "price matched any call), unpriced_calls"
                    ),
                    "by_model": serializers.ListField(
                        child=serializers.DictField(),
                        help_text="The same sums per provider and model.",
                    ),
                    "daily": serializers.ListField(
                        child=serializers.DictField(),
                        help_text="The same sums per day, provider and model.",
                    ),
                },
            )
        },
        summary="Usage and cost of a subtenant: totals, by provider and model, and by day",
        tags=["usage"],
    )
    async def get(self, request: Request, subtenant_pk: str) -> Response:
        from providers.selectors import usage_report

        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)

        def report() -> dict:
            subtenant = named_subtenant(request, subtenant_pk)
            return usage_report(subtenant=subtenant, **query.validated_data)

        return Response(await sync_to_async(report)())
