"""OpenAI-compatible endpoints: `POST /v1/chat/completions` and `GET /v1/models`.

Any OpenAI client works against the gateway by changing its base URL to
`<gateway>/v1` and its API key to a gateway key. `model` picks the provider as
`provider/model` (or through MODEL_ALIASES); the request runs through the turn
pipeline like every other surface, and errors use OpenAI's error format so the
SDKs raise their own exception types.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

import pipeline
from llmwrapper import lane
from llmwrapper.api import principal, validated
from llmwrapper.db import DB_ERRORS
from llmwrapper.errors import ApplicationError, database_unavailable
from llmwrapper.sse import stream_response
from providers import gateway
from providers.core import wire
from providers.core.error_base import GatewayError
from providers.core.errors import ProviderError
from providers.core.loop import TurnCompleted
from providers.core.tooling import tool_specs_from_openai
from providers.core.types import ToolCall
from providers.request_fields import GenerationFieldsMixin, MessageInputSerializer
from surfaces import compat
from tenants.models import ApiKey, Subtenant

logger = logging.getLogger(__name__)


class ChatCompletionSerializer(GenerationFieldsMixin):
    model = serializers.CharField(max_length=240)
    messages = MessageInputSerializer(many=True, allow_empty=False, max_length=10_000)
    stream = serializers.BooleanField(required=False, default=False)
    stream_options = serializers.DictField(required=False)
    n = serializers.IntegerField(required=False, min_value=1, max_value=1)
    max_completion_tokens = serializers.IntegerField(
        required=False, min_value=1, max_value=1_000_000
    )
    user = serializers.CharField(required=False, max_length=256)
    fallbacks = serializers.ListField(
        child=serializers.CharField(max_length=240), required=False, max_length=5
    )
    # Other OpenAI fields (logprobs, metadata, store, ...) are accepted and ignored.


class OpenAIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        type_: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status,
            message,
            type_,
            code,
            param,
        )
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def openai_error(exc: Exception) -> OpenAIError:
    """Our errors in OpenAI's shape, with the status the SDKs map to their exceptions."""
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, drf_exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"request": exc.detail}
        param = next(iter(detail), None)
        return OpenAIError(
            400,
            f"Invalid request: {json.dumps(detail, default=str)}",
            "invalid_request_error",
            None,
            param,
        )
    if isinstance(exc, drf_exceptions.ParseError):
        return OpenAIError(400, str(exc.detail), "invalid_request_error")
    if isinstance(exc, drf_exceptions.AuthenticationFailed | drf_exceptions.NotAuthenticated):
        return OpenAIError(401, str(exc.detail), "invalid_request_error", "invalid_api_key")
    if isinstance(exc, drf_exceptions.Throttled):
        return OpenAIError(429, str(exc.detail), "rate_limit_exceeded", "rate_limit_exceeded")
    if isinstance(exc, drf_exceptions.APIException):
        return OpenAIError(exc.status_code, str(exc.detail), "invalid_request_error")
    if isinstance(exc, GatewayError) and exc.status == 429:
        # The vendor's limit or ours: the SDKs raise RateLimitError and honour Retry-After.
        code = "insufficient_quota" if exc.type.endswith("budget_exhausted") else None
        return OpenAIError(
            429,
            exc.message,
            "rate_limit_error",
            code or "rate_limit_exceeded",
            headers=dict(exc.headers),
        )
    if isinstance(exc, ProviderError):
        if exc.type in ("unknown_provider", "model_not_found"):
            return OpenAIError(
                404, exc.message, "invalid_request_error", "model_not_found", "model"
            )
        kind = "invalid_request_error" if exc.status == 400 else "api_error"
        return OpenAIError(exc.status, exc.message, kind, exc.type, headers=exc.headers)
    if isinstance(exc, ApplicationError):
        return OpenAIError(exc.status, exc.message, "invalid_request_error", exc.type)
    if isinstance(exc, GatewayError) and exc.status < 500:
        # e.g. a content part refused: the part is the param.
        param = exc.details.get("part") if isinstance(exc.details, dict) else None
        return OpenAIError(exc.status, exc.message, "invalid_request_error", exc.type, param)
    if isinstance(exc, DB_ERRORS):
        body, status, headers = database_unavailable(exc)
        return OpenAIError(status, body["error"]["message"], "api_error", headers=headers)
    logger.exception("Unhandled error in the OpenAI-compatible API")
    return OpenAIError(500, "Internal server error.", "api_error")


class _OpenAIView(compat.CompatView):
    def error_response(self, exc: Exception) -> Response:
        error = openai_error(exc)
        return Response(error.body(), status=error.status, headers=error.headers)


def billed(key: ApiKey) -> Subtenant:
    """The subtenant a call with `key` is for (400 for an admin key)."""
    if key.subtenant is not None:
        return key.subtenant
    raise OpenAIError(
        400,
        "The OpenAI-compatible API needs a subtenant key (an admin key is not billed to a tenant).",
        "invalid_request_error",
    )


def _subtenant(request: Request) -> Subtenant:
    return billed(principal(request).key)


class ChatCompletionsView(_OpenAIView):
    @extend_schema(
        request=ChatCompletionSerializer,
        responses={
            200: OpenApiResponse(
                description="An OpenAI chat.completion (or chunks over SSE with stream=true)."
            )
        },
        summary="OpenAI-compatible chat completion",
        tags=["openai-compatible"],
    )
    async def post(self, request: Request):  # type: ignore[no-untyped-def]
        fields = validated(ChatCompletionSerializer, request.data)
        completion = await start(fields, principal(request).key, request.headers.get("X-Chat-ID"))
        if completion.streams:
            # The model's first event is awaited here, so a failure before any output
            # answers as a plain error (429 with Retry-After: the SDK's RateLimitError).
            await completion.open_stream()
            return stream_response(completion.chunks())
        return Response(await completion.body())


async def start(fields: dict[str, Any], key: ApiKey, chat_id: str | None) -> _Completion:
    """The turn a validated request asks for, started, in Chat Completions' format."""
    params = dict(fields)
    if "max_completion_tokens" in params and "max_tokens" not in params:
        params["max_tokens"] = params["max_completion_tokens"]
    turn = await pipeline.start(
        pipeline.TurnSpec(
            subtenant=billed(key),
            api_key=key,
            source="openai_compat",
            model=fields["model"],
            fallbacks=fields.get("fallbacks"),
            messages=wire.messages_from_api(fields["messages"], limits=gateway.content_limits()),
            tools=tool_specs_from_openai(fields.get("tools"), fields.get("functions")),
            tool_choice=fields.get("tool_choice"),
            params=params,
            server_tools=compat.server_tools(fields.get("server_tools")),
            chat=pipeline.ChatExchange(chat_id) if chat_id else None,
        )
    )
    return _Completion(fields, turn)


async def lane_start(call: lane.Call) -> lane.Answer | None:
    """`POST /v1/chat/completions` on the hot lane (`llmwrapper.lane`): what the view
    answers, for a valid request (the rest is the view's)."""
    fields = lane.valid_fields(call, ChatCompletionSerializer)
    if fields is None:
        return None
    completion = await start(fields, call.key, None)
    if completion.streams:
        await completion.open_stream()
        return lane.stream_answer(completion.chunks())
    return lane.json_answer(200, await completion.body())


def lane_error(exc: Exception) -> lane.Answer:
    """`exc` answered on the hot lane in OpenAI's shape, as `_OpenAIView` answers it."""
    error = openai_error(exc)
    return lane.json_answer(error.status, error.body(), error.headers)


class _Completion:
    """One turn in Chat Completions' format: a `chat.completion`, or its chunks."""

    def __init__(self, fields: dict[str, Any], turn: pipeline.Turn) -> None:
        self.requested_model: str = fields["model"]
        self.streams = bool(fields.get("stream"))
        self.include_usage = bool((fields.get("stream_options") or {}).get("include_usage"))
        self.turn = turn
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self._opened: pipeline.OpenedStream | None = None

    async def body(self) -> dict[str, Any]:
        completed = await compat.completed(self.turn)
        turn = completed.turn
        message: dict[str, Any] = {"role": "assistant", "content": completed.text or None}
        if turn.pending_tool_calls:
            message["tool_calls"] = [_tool_call(c) for c in turn.pending_tool_calls]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.requested_model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": _finish(turn), "logprobs": None}
            ],
            "usage": _usage(turn),
            "system_fingerprint": None,
        }

    async def open_stream(self) -> None:
        """Start the turn and wait for the model's first event (see `chunks`): a
        failure before any output is raised from here, as a plain HTTP error."""
        self._opened = await pipeline.OpenedStream.open(self.turn)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The stream's chunks, after `open_stream`."""
        yield self._chunk({"role": "assistant", "content": ""})
        tool_index = 0
        assert self._opened is not None
        async with aclosing(self._opened.events()) as events:
            async for event in events:
                if isinstance(event, pipeline.Delta):
                    yield self._chunk({"content": event.text})
                elif isinstance(event, pipeline.ToolCalled) and not event.server_side:
                    call = {"index": tool_index, **_tool_call(event.call)}
                    yield self._chunk({"tool_calls": [call]})
                    tool_index += 1
                elif isinstance(event, pipeline.Completed):
                    yield self._chunk({}, finish=_finish(event.turn))
                    if self.include_usage:
                        yield _sse({**self._base(), "choices": [], "usage": _usage(event.turn)})
                elif isinstance(event, pipeline.Failed):
                    yield _sse(openai_error(event.error.exc).body())  # type: ignore[arg-type]
                    return
        yield b"data: [DONE]\n\n"

    def _base(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.requested_model,
            "system_fingerprint": None,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse(
            {
                **self._base(),
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
            }
        )


def _sse(payload: dict[str, Any]) -> bytes:
    return (
        b"data: "
        + json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n\n"
    )


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": wire.dumps_arguments(call.arguments)},
    }


def _finish(turn: TurnCompleted) -> str:
    return (
        turn.finish_reason
        if turn.finish_reason in ("stop", "length", "tool_calls", "content_filter")
        else "stop"
    )


def _usage(turn: TurnCompleted) -> dict[str, int]:
    return {
        "prompt_tokens": turn.usage.input_tokens,
        "completion_tokens": turn.usage.output_tokens,
        "total_tokens": turn.usage.total_tokens,
    }
