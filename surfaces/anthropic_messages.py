"""Anthropic-compatible endpoints: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Anthropic's clients work against the gateway by changing their base URL to the
gateway's root and their API key to a subtenant key (sent as `x-api-key` or a Bearer
token). `model` picks the provider as on `/v1/chat/completions` (`provider/model`, an
alias of MODEL_ALIASES, or a bare name), so any provider answers in Anthropic's format.
The request runs through the turn pipeline like every other surface; errors come in
Anthropic's shape, with the statuses its SDK maps to its exceptions.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from django.core.exceptions import RequestDataTooBig
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

import pipeline
from chats.history import DOCUMENT_BYTES_PER_TOKEN, IMAGE_TOKENS
from llmwrapper.api import principal
from llmwrapper.auth import ApiKeyOrXApiKeyAuthentication
from llmwrapper.db import DB_ERRORS
from llmwrapper.errors import database_unavailable
from llmwrapper.openapi import ERROR_DESCRIPTIONS, ApiSchema
from llmwrapper.sse import encode, stream_response
from providers import gateway, wire
from providers.content import ContentError, ContentLimits, DocumentPart, ImagePart, parse_content
from providers.error_base import GatewayError
from providers.errors import ProviderError
from providers.loop import TurnCompleted
from providers.models import LlmCall
from providers.registry import ProviderRegistry
from providers.types import ChatRequest, GenerationParams, Message, ToolCall, ToolSpec
from surfaces import compat
from tenants.models import Subtenant

logger = logging.getLogger(__name__)

# Seconds a stream may stay silent before a `ping` event (Anthropic sends them too).
PING_SECONDS = 15.0

# The model's thinking in an assistant turn sent back: not passed on (the gateway does
# not return thinking blocks either).
_DROPPED_BLOCKS = ("thinking", "redacted_thinking")
# Request fields only Anthropic's API has: sent to an Anthropic model as they are.
_ANTHROPIC_ONLY = ("top_k", "thinking")


# -- errors ------------------------------------------------------------------------------

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class AnthropicError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        default = "invalid_request_error" if status < 500 else "api_error"
        self.type = type_ or _ERROR_TYPES.get(status, default)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.type, "message": self.message}}


def anthropic_error(exc: BaseException) -> AnthropicError:
    """Our errors in Anthropic's shape, with the status its SDK maps to its exceptions."""
    if isinstance(exc, AnthropicError):
        return exc
    if isinstance(exc, drf_exceptions.ValidationError):
        return AnthropicError(400, "; ".join(_described(exc.detail)) or "Invalid request.")
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        message = "Missing API key: send 'x-api-key: <key>' or 'Authorization: Bearer <key>'."
        return AnthropicError(401, message)
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        return AnthropicError(401, str(exc.detail))
    if isinstance(exc, drf_exceptions.Throttled):
        seconds = str(max(1, math.ceil(exc.wait))) if exc.wait is not None else "1"
        return AnthropicError(429, str(exc.detail), headers={"Retry-After": seconds})
    if isinstance(exc, drf_exceptions.APIException):
        return AnthropicError(exc.status_code, str(exc.detail))
    if isinstance(exc, RequestDataTooBig):
        return AnthropicError(413, "The request body is too large.")
    if isinstance(exc, GatewayError):
        return _gateway_error(exc)
    if isinstance(exc, DB_ERRORS):
        body, _, headers = database_unavailable(exc)
        return AnthropicError(529, body["error"]["message"], headers=headers)
    logger.exception("Unhandled error in the Anthropic-compatible API", exc_info=exc)
    return AnthropicError(500, "Internal server error.")


def _gateway_error(exc: GatewayError) -> AnthropicError:
    headers = dict(exc.headers)
    if exc.status == 429:  # the vendor's limit or ours: RateLimitError, with Retry-After
        return AnthropicError(429, exc.message, headers=headers)
    if isinstance(exc, ContentError):
        return AnthropicError(exc.status, f"{exc.details['part']}: {exc.message}")
    if isinstance(exc, ProviderError):
        if exc.type in ("unknown_provider", "model_not_found"):
            return AnthropicError(404, exc.message)
        if exc.status >= 500 and exc.upstream_status in (503, 529):
            return AnthropicError(529, exc.message, headers=headers)
    if exc.status == 503:  # our database or pool: Anthropic's "overloaded, retry"
        return AnthropicError(529, exc.message, headers=headers)
    return AnthropicError(exc.status, exc.message, headers=headers)


def _described(detail: Any, path: str = "") -> list[str]:
    """DRF's field errors as Anthropic words them: `messages.0.role: ...`."""
    if isinstance(detail, dict):
        return [
            line
            for key, value in detail.items()
            for line in _described(value, path if key == "non_field_errors" else _join(path, key))
        ]
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            text = " ".join(str(item) for item in detail)
            return [f"{path}: {text}" if path else text]
        return [line for i, item in enumerate(detail) for line in _described(item, _join(path, i))]
    return [f"{path}: {detail}" if path else str(detail)]


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


# -- requests ----------------------------------------------------------------------------


class MessageParamSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["user", "assistant"])
    content = serializers.JSONField(
        help_text="Text, or content blocks: text, image, document, tool_use, tool_result."
    )

    def validate_content(self, value: Any) -> Any:
        if isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(b, dict) for b in value)
        ):
            return value
        raise serializers.ValidationError("Must be a string or a list of content blocks.")


class CountTokensRequestSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=240)
    messages = MessageParamSerializer(many=True, allow_empty=False, max_length=10_000)
    system = serializers.JSONField(required=False, help_text="Text, or text blocks.")
    tools = serializers.ListField(child=serializers.DictField(), required=False, max_length=128)
    tool_choice = serializers.DictField(required=False)
    thinking = serializers.DictField(required=False, help_text="Passed to Anthropic models.")
    # Other Anthropic fields (cache_control, service_tier, container...) are accepted
    # and ignored.

    def validate_system(self, value: Any) -> list[str]:
        if isinstance(value, str):
            return [value] if value else []
        if isinstance(value, list) and all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
            for b in value
        ):
            return [b["text"] for b in value if b["text"]]
        raise serializers.ValidationError("Must be a string or a list of text blocks.")

    def validate_tools(self, value: list[dict]) -> tuple[ToolSpec, ...]:
        specs = []
        for tool in value:
            if tool.get("type", "custom") not in ("custom", None):
                raise serializers.ValidationError(
                    f"Unsupported tool type {tool['type']!r}: only client tools "
                    "(name, description, input_schema) are served."
                )
            schema = tool.get("input_schema", {"type": "object", "properties": {}})
            if not isinstance(tool.get("name"), str) or not isinstance(schema, dict):
                raise serializers.ValidationError("A tool needs 'name' and 'input_schema'.")
            description = tool.get("description") or ""
            specs.append(ToolSpec(tool["name"], str(description), schema))
        return tuple(specs)

    def validate_tool_choice(self, value: dict) -> str | dict:
        """Anthropic's tool_choice as the adapters take it."""
        kind = value.get("type")
        if kind in ("auto", "none"):
            return kind
        if kind == "any":
            return "required"
        if kind == "tool" and isinstance(value.get("name"), str):
            return {"type": "function", "function": {"name": value["name"]}}
        raise serializers.ValidationError(
            "Must be {'type': 'auto' | 'any' | 'none'} or {'type': 'tool', 'name': ...}."
        )


class MessagesRequestSerializer(CountTokensRequestSerializer):
    max_tokens = serializers.IntegerField(min_value=1, max_value=1_000_000)
    temperature = serializers.FloatField(required=False, min_value=0, max_value=1)
    top_p = serializers.FloatField(required=False, min_value=0, max_value=1)
    top_k = serializers.IntegerField(required=False, min_value=0, help_text="Anthropic only.")
    stop_sequences = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False, max_length=1000),
        required=False,
        max_length=8,
    )
    metadata = serializers.DictField(required=False, help_text="Accepted and ignored.")
    stream = serializers.BooleanField(required=False, default=False)
    server_tools = serializers.JSONField(
        required=False,
        help_text="The gateway's server-side tools offered to the model: omitted or false = "
        "none, true = all, a list of names = only those.",
    )
    fallbacks = serializers.ListField(
        child=serializers.CharField(max_length=240), required=False, max_length=5
    )

    def validate_server_tools(self, value: Any) -> Any:
        if isinstance(value, bool) or (
            isinstance(value, list) and all(isinstance(n, str) for n in value)
        ):
            return value
        raise serializers.ValidationError("Must be true, false or a list of tool names.")


def conversation(fields: dict[str, Any], *, limits: ContentLimits) -> tuple[Message, ...]:
    """`system` and `messages` as normalized messages; a refused block is a ContentError
    naming it (`messages[1].content[2]`, `messages[3].content[0].content[1]`)."""
    out = [Message("system", text) for text in fields.get("system") or ()]
    names: dict[str, str] = {}  # tool_use id -> tool name, for the results answering them
    for i, message in enumerate(fields["messages"]):
        where = f"messages[{i}].content"
        if message["role"] == "assistant":
            out.append(_assistant(message["content"], where, names))
        else:
            out += _user(message["content"], where, names, limits)
    return tuple(out)


def _assistant(content: str | list[dict], where: str, names: dict[str, str]) -> Message:
    if isinstance(content, str):
        return Message("assistant", content)
    texts: list[str] = []
    calls: list[ToolCall] = []
    for j, block in enumerate(content):
        at, kind = f"{where}[{j}]", block.get("type")
        if kind == "text":
            texts.append(_text(block, at))
        elif kind == "tool_use":
            call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
            if not (isinstance(call_id, str) and call_id and isinstance(name, str) and name):
                raise ContentError("A tool_use block needs 'id' and 'name'.", where=at)
            if not isinstance(arguments, dict):
                raise ContentError("A tool_use block's 'input' must be an object.", where=at)
            names[call_id] = name
            calls.append(ToolCall(call_id, name, arguments))
        elif kind not in _DROPPED_BLOCKS:
            raise ContentError(
                f"Unsupported block type {kind!r} in an assistant message: use 'text' or "
                "'tool_use'.",
                where=at,
            )
    return Message("assistant", "".join(texts), tool_calls=tuple(calls))


def _user(
    content: str | list[dict], where: str, names: dict[str, str], limits: ContentLimits
) -> list[Message]:
    """A user turn: its tool results (each a tool message, in order), then what the user
    wrote, as the vendors want tool results right after the calls they answer."""
    if isinstance(content, str):
        return [Message("user", content)]
    out: list[Message] = []
    blocks: list[tuple[int, Any]] = []
    for j, block in enumerate(content):
        if block.get("type") == "tool_result":
            out.append(_tool_result(block, f"{where}[{j}]", names, limits))
        else:
            blocks.append((j, _part(block, f"{where}[{j}]")))
    if blocks or not out:
        text, parts = _parsed(blocks, where, "user", limits)
        out.append(Message("user", text, parts=parts))
    return out


def _tool_result(
    block: dict[str, Any], where: str, names: dict[str, str], limits: ContentLimits
) -> Message:
    call_id, content = block.get("tool_use_id"), block.get("content")
    if not isinstance(call_id, str) or not call_id:
        raise ContentError("A tool_result block needs 'tool_use_id'.", where=where)
    text, parts = "", ()
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        inner = f"{where}.content"
        blocks = [(k, _part(b, f"{inner}[{k}]")) for k, b in enumerate(content)]
        text, parts = _parsed(blocks, inner, "tool", limits)
    elif content is not None:
        raise ContentError("A tool_result's content must be text or a list of blocks.", where=where)
    return Message("tool", text, tool_call_id=call_id, name=names.get(call_id), parts=parts)


def _parsed(
    blocks: list[tuple[int, Any]], where: str, role: str, limits: ContentLimits
) -> tuple[str, tuple]:
    """Blocks (in OpenAI's part format, with their index in the request) checked by
    `parse_content`: media types, sizes, the data's first bytes."""
    try:
        return parse_content([part for _, part in blocks], where=where, role=role, limits=limits)
    except ContentError as exc:
        # parse_content counts the parts it was given; the request counts its blocks.
        renamed = {f"{where}[{k}]": f"{where}[{j}]" for k, (j, _) in enumerate(blocks)}
        exc.details["part"] = renamed.get(exc.details["part"], exc.details["part"])
        raise


def _part(block: Any, where: str) -> dict[str, Any]:
    """An Anthropic content block as the OpenAI-format part `parse_content` checks."""
    if not isinstance(block, dict):
        raise ContentError("A content block must be an object.", where=where)
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": _text(block, where)}
    source = block.get("source")
    if kind in ("image", "document") and not isinstance(source, dict):
        raise ContentError(f"An {kind} block needs a 'source'.", where=where)
    if kind == "image":
        if source.get("type") == "base64":
            return {"type": "image_url", "image_url": {"url": _data_uri(source, where)}}
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return {"type": "image_url", "image_url": {"url": source["url"]}}
        raise ContentError(
            "An image's source must be 'base64' (media_type, data) or 'url' (url).", where=where
        )
    if kind == "document":
        if source.get("type") == "base64":
            file = {"file_data": _data_uri(source, where)}
            if isinstance(block.get("title"), str) and block["title"]:
                file["filename"] = block["title"][:255]
            return {"type": "file", "file": file}
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            return {"type": "text", "text": source["data"]}
        raise ContentError(
            "A document's source must be 'base64' (a PDF) or 'text'; URLs and file ids are "
            "not supported.",
            where=where,
        )
    raise ContentError(
        f"Unsupported block type {kind!r}: use 'text', 'image', 'document' or 'tool_result'.",
        where=where,
    )


def _text(block: dict[str, Any], where: str) -> str:
    if not isinstance(block.get("text"), str):
        raise ContentError("A text block needs 'text' (a string).", where=where)
    return block["text"]


def _data_uri(source: dict[str, Any], where: str) -> str:
    media_type, data = source.get("media_type"), source.get("data")
    if not isinstance(media_type, str) or not isinstance(data, str):
        raise ContentError("A base64 source needs 'media_type' and 'data'.", where=where)
    return f"data:{media_type};base64,{data}"


def _params(fields: dict[str, Any]) -> dict[str, Any]:
    """Generation params as `wire.params_from` reads them."""
    return {
        "max_tokens": fields["max_tokens"],
        "temperature": fields.get("temperature"),
        "top_p": fields.get("top_p"),
        "stop": fields.get("stop_sequences") or None,
    }


def _with_anthropic_fields(turn: pipeline.Turn, fields: dict[str, Any]) -> None:
    """`top_k` and `thinking` reach an Anthropic model as extra body fields. Other
    vendors have no such fields: they are dropped for them, and fallbacks of another
    kind are left out of a turn that has them."""
    extra = {name: fields[name] for name in _ANTHROPIC_ONLY if fields.get(name) is not None}
    if not extra or _kinds(turn, turn.target) != {"anthropic"}:
        return
    params = turn.request.params
    turn.request = replace(turn.request, params=replace(params, extra={**params.extra, **extra}))
    turn.fallbacks = [t for t in turn.fallbacks if _kinds(turn, t) == {"anthropic"}]


def _connections(target: gateway.Target) -> list[tuple[str, str]]:
    """(connection, model) of each provider `target` stands for: itself, or a route's
    deployments."""
    if target.route is None:
        return [(target.provider, target.model)]
    return [(d.connection, d.model) for d in target.route.deployments]


def _registry(turn: pipeline.Turn) -> ProviderRegistry:
    return turn.view.registry if turn.view is not None else gateway.registry()


def _kinds(turn: pipeline.Turn, target: gateway.Target) -> set[str]:
    registry = _registry(turn)
    try:
        return {registry.config(name).kind for name, _ in _connections(target)}
    except ProviderError:
        return set()


def estimate_tokens(messages: tuple[Message, ...], tools: tuple[ToolSpec, ...] = ()) -> int:
    """Input tokens as the gateway estimates them where the vendor cannot count: a token
    per 4 characters of text (tool calls and tool definitions as JSON), 4 per message,
    an image IMAGE_TOKENS, a PDF one per DOCUMENT_BYTES_PER_TOKEN bytes (at least
    IMAGE_TOKENS), as chat histories are measured."""
    chars, tokens = 0, 0
    for message in messages:
        chars += len(message.content)
        chars += sum(len(c.name) + len(json.dumps(c.arguments)) for c in message.tool_calls)
        tokens += 4
        for part in message.parts:
            if isinstance(part, ImagePart):
                tokens += IMAGE_TOKENS
            elif isinstance(part, DocumentPart):
                tokens += max(IMAGE_TOKENS, len(part.data) // DOCUMENT_BYTES_PER_TOKEN)
    for tool in tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
    return tokens + math.ceil(chars / 4)


# -- answers -----------------------------------------------------------------------------

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def _stop_reason(turn: TurnCompleted) -> str:
    # Which stop sequence matched is not known past the adapters: "stop" is end_turn.
    # A tool loop that ran out of rounds has no call left for the client.
    if turn.finish_reason == "tool_calls" and not turn.pending_tool_calls:
        return "end_turn"
    return _STOP_REASONS.get(turn.finish_reason, "end_turn")


def _usage(turn: TurnCompleted) -> dict[str, int]:
    return {"input_tokens": turn.usage.input_tokens, "output_tokens": turn.usage.output_tokens}


def _tool_use(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}


def _event(kind: str, **payload: Any) -> bytes:
    return encode(kind, {"type": kind, **payload})


class _Reply:
    """One turn in the Messages format: a `message`, or its stream of events."""

    def __init__(self, requested_model: str, turn: pipeline.Turn) -> None:
        self.requested_model = requested_model
        self.turn = turn
        self.id = f"msg_{uuid.uuid4().hex}"
        self._opened: pipeline.OpenedStream | None = None
        self._blocks = 0  # content blocks started
        self._text_open = False

    def message(self, content: list[dict], stop: str | None, usage: dict) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.requested_model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }

    async def body(self) -> dict[str, Any]:
        done = await compat.completed(self.turn)
        calls = done.turn.pending_tool_calls
        content = [{"type": "text", "text": done.text}] if done.text or not calls else []
        content += [_tool_use(call) for call in calls]
        return self.message(content, _stop_reason(done.turn), _usage(done.turn))

    async def open_stream(self) -> None:
        """Start the turn and wait for the model's first event: a failure before any
        output is raised from here, as a plain HTTP error."""
        self._opened = await pipeline.OpenedStream.open(self.turn)

    async def events(self) -> AsyncIterator[bytes]:
        """The stream's events, after `open_stream`: `message_start`, content blocks,
        `message_delta` with the stop reason and usage, `message_stop`; `ping` while
        the model is silent; an `error` event if the turn fails midway."""
        assert self._opened is not None
        yield _event("message_start", message=self.message([], None, _NO_USAGE))
        yield _event("ping")
        events = compat.with_keepalives(self._opened.events(), PING_SECONDS)
        async with aclosing(events):
            async for event in events:
                if event is None:
                    yield _event("ping")
                elif isinstance(event, pipeline.Delta):
                    if not self._text_open:
                        yield self._start({"type": "text", "text": ""})
                        self._text_open = True
                    delta = {"type": "text_delta", "text": event.text}
                    yield _event("content_block_delta", index=self._blocks - 1, delta=delta)
                elif isinstance(event, pipeline.ToolCalled) and not event.server_side:
                    for chunk in self._tool_call(event.call):
                        yield chunk
                elif isinstance(event, pipeline.Completed):
                    if not self._blocks:
                        yield self._start({"type": "text", "text": ""})
                        self._text_open = True
                    for chunk in self._close_text():
                        yield chunk
                    delta = {"stop_reason": _stop_reason(event.turn), "stop_sequence": None}
                    yield _event("message_delta", delta=delta, usage=_usage(event.turn))
                    yield _event("message_stop")
                elif isinstance(event, pipeline.Failed):
                    yield _event("error", error=anthropic_error(event.error.exc).body()["error"])
                    return

    def _start(self, block: dict[str, Any]) -> bytes:
        self._blocks += 1
        return _event("content_block_start", index=self._blocks - 1, content_block=block)

    def _close_text(self) -> list[bytes]:
        if not self._text_open:
            return []
        self._text_open = False
        return [_event("content_block_stop", index=self._blocks - 1)]

    def _tool_call(self, call: ToolCall) -> list[bytes]:
        chunks = self._close_text()
        chunks.append(self._start({**_tool_use(call), "input": {}}))
        index = self._blocks - 1
        delta = {"type": "input_json_delta", "partial_json": wire.dumps_arguments(call.arguments)}
        chunks.append(_event("content_block_delta", index=index, delta=delta))
        chunks.append(_event("content_block_stop", index=index))
        return chunks


_NO_USAGE = {"input_tokens": 0, "output_tokens": 0}


# -- views -------------------------------------------------------------------------------


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
        serializer = MessagesRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        turn = await pipeline.start(
            pipeline.TurnSpec(
                subtenant=_subtenant(request),
                api_key=principal(request).key,
                source=LlmCall.Source.ANTHROPIC,
                model=fields["model"],
                fallbacks=fields.get("fallbacks"),
                messages=conversation(fields, limits=gateway.content_limits()),
                tools=fields.get("tools", ()),
                tool_choice=fields.get("tool_choice"),
                params=_params(fields),
                server_tools=compat.server_tools(fields.get("server_tools")),
            )
        )
        _with_anthropic_fields(turn, fields)
        reply = _Reply(fields["model"], turn)
        if fields["stream"]:
            # The model's first event is awaited here, so a failure before any output
            # answers as a plain error (429 with Retry-After: the SDK's RateLimitError).
            await reply.open_stream()
            return stream_response(reply.events())
        return Response(await reply.body())


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
        serializer = CountTokensRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
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
        connection, model = (_connections(turn.target) or [("", "")])[0]
        provider = _registry(turn).get(connection) if connection else None
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
