"""OpenAI-compatible endpoints: `POST /v1/chat/completions` and `GET /v1/models`.

Any OpenAI client works against the gateway by changing its base URL to
`<gateway>/v1` and its API key to a gateway key. `model` picks the provider as
`provider/model` (or through MODEL_ALIASES); the request runs through the same tool
loop and call records as the native API, and errors use OpenAI's error format so the
SDKs raise their own exception types.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from llmwrapper.api import principal
from llmwrapper.async_views import AsyncAPIView
from llmwrapper.db import DB_ERRORS
from llmwrapper.errors import ApplicationError, database_unavailable
from llmwrapper.renderers import STREAM_RENDERERS
from llmwrapper.sse import stream_response
from providers import gateway, services, wire
from providers.api import GenerationFieldsMixin, MessageInputSerializer
from providers.errors import ProviderError
from providers.loop import RoundCompleted, TurnCompleted, run_turn
from providers.tooling import tool_specs_from_openai
from providers.types import ChatRequest, TextDelta, ToolCallComplete
from tenants.models import Subtenant

logger = logging.getLogger(__name__)


# A chat to persist the exchange into, named with the `X-Chat-ID` header. The chats app
# registers the recorder (providers may not import chats): `check(subtenant, chat_id)`
# raises 404 for a chat the caller cannot reach; `record(...)` stores the exchange: the
# finished turn, or (turn=None) the partial text with status "interrupted" when the
# client left, "error" and the reason when the call failed. It runs in a `finally:`,
# so every way a request ends leaves the exchange in the chat.
class ExchangeRecorder:
    check: Callable[..., Awaitable[None]]
    record: Callable[..., Awaitable[None]]


_exchange_recorder: ExchangeRecorder | None = None


def register_exchange_recorder(recorder: ExchangeRecorder) -> None:
    global _exchange_recorder
    _exchange_recorder = recorder


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
    if isinstance(exc, ProviderError | ApplicationError) and exc.status == 429:
        # The vendor's limit or ours: the SDKs raise RateLimitError and honour Retry-After.
        code = "insufficient_quota" if exc.type == "token_budget_exhausted" else None
        return OpenAIError(
            429,
            exc.message,
            "rate_limit_error",
            code or "rate_limit_exceeded",
            headers=getattr(exc, "headers", None),
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
    if isinstance(exc, DB_ERRORS):
        body, status, headers = database_unavailable(exc)
        return OpenAIError(status, body["error"]["message"], "api_error", headers=headers)
    logger.exception("Unhandled error in the OpenAI-compatible API")
    return OpenAIError(500, "Internal server error.", "api_error")


def resolve_model(model: str) -> gateway.Target:
    """`provider/model`, an alias from MODEL_ALIASES, or a bare name on the default provider."""
    aliased = settings.MODEL_ALIASES.get(model, model)
    return gateway.resolve_target([(None, aliased)])


class _OpenAIView(AsyncAPIView):
    renderer_classes = STREAM_RENDERERS

    def handle_exception(self, exc: Exception) -> Response:
        error = openai_error(exc)
        return Response(error.body(), status=error.status, headers=error.headers)


def _subtenant(request: Request) -> Subtenant:
    caller = principal(request)
    if caller.subtenant is not None:
        return caller.subtenant
    raise OpenAIError(
        400,
        "The OpenAI-compatible API needs a subtenant key (an admin key is not billed to a tenant).",
        "invalid_request_error",
    )


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
        data = request.data
        serializer = ChatCompletionSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        subtenant = _subtenant(request)
        await services.ensure_llm_allowed(subtenant)
        target = resolve_model(fields["model"])
        registry = gateway.registry()
        registry.get(target.provider)  # not configured: a clear 400 before anything starts
        params = dict(fields)
        if "max_completion_tokens" in params and "max_tokens" not in params:
            params["max_tokens"] = params["max_completion_tokens"]
        chat_request = ChatRequest(
            model=target.model,
            messages=tuple(wire.message_from_api(m) for m in fields["messages"]),
            tools=tool_specs_from_openai(fields.get("tools"), fields.get("functions")),
            tool_choice=fields.get("tool_choice"),
            params=wire.params_from(params),
        )
        selection = fields.get("server_tools", False)
        executor = await services.tool_executor(
            subtenant=subtenant, selection=None if selection is True else selection
        )
        fallbacks = (
            gateway.parse_targets(fields["fallbacks"])
            if "fallbacks" in fields
            else gateway.default_fallbacks()
        )
        context = services.CallContext(
            subtenant=subtenant, api_key=principal(request).key, source="openai_compat"
        )
        chat_id = request.headers.get("X-Chat-ID")
        if chat_id:
            if _exchange_recorder is None:
                raise OpenAIError(
                    400, "Chat persistence is not available.", "invalid_request_error"
                )
            await _exchange_recorder.check(subtenant=subtenant, chat_id=chat_id)
        completion = _Completion(
            fields["model"], context, chat_request, target, fallbacks, executor, chat_id
        )
        if fields.get("stream"):
            include_usage = bool((fields.get("stream_options") or {}).get("include_usage"))
            # The model's first event is awaited here, so a failure before any output
            # answers as a plain error (429 with Retry-After: the SDK's RateLimitError).
            await completion.open_stream()
            return stream_response(completion.chunks(include_usage))
        return Response(await completion.body())


class _Completion:
    def __init__(self, requested_model, context, request, target, fallbacks, executor, chat_id):  # type: ignore[no-untyped-def]
        self.requested_model = requested_model
        self.context = context
        self.request = request
        self.target = target
        self.fallbacks = fallbacks
        self.executor = executor
        self.chat_id = chat_id
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self._started = time.perf_counter()
        self._stream: Any = None  # the model's events, once `open_stream` started them
        self._first: list[Any] = []

    def _events(self, *, streaming: bool):  # type: ignore[no-untyped-def]
        return run_turn(
            self.request,
            chain_for=gateway.chain_factory(self.target, self.fallbacks),
            executor=self.executor,
            options=gateway.turn_options(streaming=streaming),
        )

    async def body(self) -> dict[str, Any]:
        parts: list[str] = []
        turn: TurnCompleted | None = None
        started = time.perf_counter()
        error: str | None = None  # None: the client left
        try:
            async for event in self._events(streaming=False):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, RoundCompleted):
                    self.context.add_round(event)
                elif isinstance(event, TurnCompleted):
                    turn = event
        except ProviderError as exc:
            error = exc.message
            self.context.add_failure(
                self.target, status="error", error=exc, latency_ms=_ms(started)
            )
            raise
        except Exception:
            error = "Internal error"
            raise
        finally:
            if turn is None:
                await self._record_safely("".join(parts), None, error)
            await self.context.flush()
        assert turn is not None
        text = "".join(parts)
        await self._record(text, turn)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
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
        """Start the model call and wait for its first event (see `chunks`).

        A failure before any event is raised from here, as a plain HTTP error; what
        it cost is recorded as for any failed call.
        """
        self._started = time.perf_counter()
        self._stream = self._events(streaming=True)
        try:
            self._first = [await anext(self._stream)]
        except StopAsyncIteration:
            self._first = []
        except BaseException as exc:
            await self._stream.aclose()
            failure = exc if isinstance(exc, ProviderError) else None
            error = failure.message if failure else None
            if isinstance(exc, Exception) and not failure:
                error = "Internal error"
            await self._record_safely("", None, error)
            self.context.add_failure(
                self.target,
                status="error" if isinstance(exc, Exception) else "interrupted",
                error=failure,
                latency_ms=_ms(self._started),
            )
            await self.context.flush()
            raise

    async def _opened_events(self) -> AsyncIterator[Any]:
        for event in self._first:
            yield event
        async with aclosing(self._stream):
            async for event in self._stream:
                yield event

    async def chunks(self, include_usage: bool) -> AsyncIterator[bytes]:
        """The stream's chunks, after `open_stream`."""
        parts: list[str] = []
        status, failure, started = "interrupted", None, self._started
        turn: TurnCompleted | None = None
        recorded, error = False, None  # error None: the client left
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            tool_index = 0
            async for event in self._opened_events():
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    yield self._chunk({"content": event.text})
                elif isinstance(event, ToolCallComplete) and not (
                    self.executor and self.executor.handles(event.call.name)
                ):
                    yield self._chunk(
                        {"tool_calls": [{"index": tool_index, **_tool_call(event.call)}]}
                    )
                    tool_index += 1
                elif isinstance(event, RoundCompleted):
                    self.context.add_round(event)
                elif isinstance(event, TurnCompleted):
                    status, turn = "ok", event
                    yield self._chunk({}, finish=_finish(event))
                    if include_usage:
                        yield _sse({**self._base(), "choices": [], "usage": _usage(event)})
                    # Stored before [DONE], so a client reading the chat next finds it.
                    recorded = True
                    await self._record("".join(parts), event)
            yield b"data: [DONE]\n\n"
        except ProviderError as exc:
            status, failure, error = "error", exc, exc.message
            yield _sse(openai_error(exc).body())
        except Exception:
            error = "Internal error"
            raise
        finally:
            if not recorded:
                # The client left (or the call failed) before the end: keep what it got.
                await self._record_safely("".join(parts), turn, error)
            if status != "ok":
                self.context.add_failure(
                    self.target, status=status, error=failure, latency_ms=_ms(started)
                )
            await self.context.flush()

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

    async def _record(self, text: str, turn: TurnCompleted | None, **unfinished: str) -> None:
        if self.chat_id and _exchange_recorder is not None:
            await _exchange_recorder.record(
                subtenant=self.context.subtenant,
                chat_id=self.chat_id,
                request=self.request,
                text=text,
                turn=turn,
                **unfinished,
            )

    async def _record_safely(
        self, text: str, turn: TurnCompleted | None, error: str | None
    ) -> None:
        """`_record` from a `finally:`: shielded from the request's cancellation, and
        never raising. Without a finished turn the partial text is kept, `interrupted`
        when the client left (error None), else `error` with the reason."""
        unfinished: dict[str, str] = {}
        if turn is None:
            unfinished = {
                "status": "interrupted" if error is None else "error",
                "error": error or "",
                "provider": self.target.provider,
                "model": self.target.model,
            }
        try:
            await asyncio.shield(self._record(text, turn, **unfinished))
        except Exception:
            logger.exception("Could not store the unfinished exchange in chat %s", self.chat_id)


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _sse(payload: dict[str, Any]) -> bytes:
    return (
        b"data: "
        + json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n\n"
    )


def _tool_call(call) -> dict[str, Any]:  # type: ignore[no-untyped-def]
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


class ModelsView(_OpenAIView):
    @extend_schema(
        responses={200: OpenApiResponse(description="OpenAI's model list: `provider/model` ids.")},
        summary="OpenAI-compatible model list",
        tags=["openai-compatible"],
    )
    async def get(self, request: Request) -> Response:
        registry = gateway.registry()
        created = int(time.time())
        data = []
        for name in registry.names():
            if not registry.is_configured(name):
                continue
            try:
                models = await registry.get(name).list_models()
            except ProviderError:
                models = [registry.config(name).default_model]
            data += [
                {"id": f"{name}/{m}", "object": "model", "created": created, "owned_by": name}
                for m in models
            ]
        data += [
            {"id": alias, "object": "model", "created": created, "owned_by": "alias"}
            for alias in settings.MODEL_ALIASES
        ]
        return Response({"object": "list", "data": data})
