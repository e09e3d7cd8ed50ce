"""Anthropic Messages API through the official `anthropic` SDK, imported only here and
only when an instance is built, so that reading the vendors' descriptors loads no SDK.

Translation notes: system messages become the top-level `system`; assistant tool calls
become `tool_use` blocks; tool results become `tool_result` blocks in a user turn, and
consecutive turns of one role are merged because the API wants them alternating.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx

from providers.core.base import Capabilities, Provider, ProviderConfig, ProviderDescriptor, Setting
from providers.core.content import ImagePart, Part, TextPart
from providers.core.errors import (
    ProviderError,
    ProviderStreamInterruptedError,
    ProviderTimeoutError,
    ProviderUpstreamError,
    error_from_status,
    parse_retry_after,
    redact,
)
from providers.core.tooling import forced_tool_name, parse_arguments, tool_choice_mode
from providers.core.types import (
    ChatRequest,
    ChatResult,
    Finished,
    FinishReason,
    Message,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallComplete,
    Usage,
    UsageEvent,
)

_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Error types Anthropic sends inside a 200 stream, mapped to an equivalent HTTP status.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class AnthropicProvider(Provider):
    def __init__(self, config: ProviderConfig) -> None:
        import anthropic

        super().__init__(config)
        http_client = None
        if config.transport:  # e.g. through the outbound guard
            limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
            http_client = anthropic.DefaultAsyncHttpxClient(
                transport=config.transport(limits=limits)
            )
        self._client = anthropic.AsyncAnthropic(
            api_key=config.api_key,
            base_url=config.base_url,
            timeout=anthropic.Timeout(config.read_timeout, connect=config.connect_timeout),
            max_retries=0,  # retries are ours (providers.core.retry)
            default_headers=config.extra_headers or None,
            open_telemetry=False,  # our own observability records calls
            http_client=http_client,
        )

    # -- request translation -------------------------------------------------------

    def build_kwargs(self, request: ChatRequest) -> dict[str, Any]:
        p = request.params
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        kwargs: dict[str, Any] = {
            "model": self.model_for(request),
            "max_tokens": p.max_tokens or self.config.default_max_tokens,
            "messages": _messages_to_anthropic(request.messages),
        }
        if system:
            kwargs["system"] = system
        mode = tool_choice_mode(request.tool_choice)
        if request.tools and mode != "none":
            kwargs["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
            if mode == "required":
                kwargs["tool_choice"] = {"type": "any"}
            elif mode == "tool":
                kwargs["tool_choice"] = {
                    "type": "tool",
                    "name": forced_tool_name(request.tool_choice),
                }
            elif mode == "auto":
                kwargs["tool_choice"] = {"type": "auto"}
        if p.stop:
            kwargs["stop_sequences"] = list(p.stop)
        extra: dict[str, Any] = {}
        # The SDK no longer lists sampling knobs; the API still takes them on most models.
        if p.temperature is not None:
            extra["temperature"] = p.temperature
        if p.top_p is not None:
            extra["top_p"] = p.top_p
        schema = _json_schema(p.response_format)
        if schema is not None:
            kwargs["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        extra.update(p.extra)
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    # -- calls ---------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> ChatResult:
        try:
            message = await self._client.messages.create(**self.build_kwargs(request))
        except Exception as exc:
            raise self._error(exc, streaming=False) from exc
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                calls.append(ToolCall(id=block.id, name=block.name, arguments=dict(block.input)))
        return ChatResult(
            text="".join(texts),
            tool_calls=tuple(calls),
            usage=_usage(message.usage),
            finish_reason=_STOP.get(message.stop_reason or "end_turn", "stop"),
            model=message.model or self.model_for(request),
            provider=self.name,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        try:
            events = await self._client.messages.create(**self.build_kwargs(request), stream=True)
        except Exception as exc:
            raise self._error(exc, streaming=False) from exc

        tools: dict[int, dict[str, Any]] = {}  # content block index -> tool state
        usage = Usage()
        stop_reason: str | None = None
        stopped = False
        try:
            async with events:
                async for event in self.wire_events(events):
                    kind = event.type
                    if kind == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta":
                            yield TextDelta(delta.text)
                        elif delta.type == "input_json_delta" and event.index in tools:
                            tools[event.index]["json"].append(delta.partial_json)
                    elif kind == "content_block_start":
                        block = event.content_block
                        if block.type == "text" and block.text:
                            yield TextDelta(block.text)
                        elif block.type == "tool_use":
                            tools[event.index] = {"id": block.id, "name": block.name, "json": []}
                    elif kind == "content_block_stop" and event.index in tools:
                        state = tools[event.index]
                        args = parse_arguments("".join(state["json"]))
                        yield ToolCallComplete(ToolCall(state["id"], state["name"], args))
                    elif kind == "message_start":
                        usage = _usage(event.message.usage)
                    elif kind == "message_delta":
                        stop_reason = event.delta.stop_reason or stop_reason
                        usage = _cumulative(usage, event.usage)
                    elif kind == "message_stop":
                        stopped = True
        except Exception as exc:
            raise self._error(exc, streaming=True) from exc
        if not stopped:
            raise ProviderStreamInterruptedError(
                "The response stream ended before the model finished", provider=self.name
            )
        yield UsageEvent(usage)
        yield Finished(_STOP.get(stop_reason or "end_turn", "stop"))

    async def count_tokens(self, request: ChatRequest) -> int:
        """The input tokens of `request` as Anthropic counts them (its
        `/v1/messages/count_tokens`): messages, system prompt, tools and, when the
        request's extra fields ask for it, thinking."""
        kwargs = self.build_kwargs(request)
        counted = {
            name: kwargs[name]
            for name in ("model", "messages", "system", "tools", "tool_choice", "output_config")
            if name in kwargs
        }
        if request.params.extra.get("thinking") is not None:
            counted["thinking"] = request.params.extra["thinking"]
        try:
            result = await self._client.messages.count_tokens(**counted)
        except Exception as exc:
            raise self._error(exc, streaming=False) from exc
        return result.input_tokens

    async def list_models(self) -> list[str]:
        try:
            return [model.id async for model in self._client.models.list()]
        except Exception as exc:
            raise self._error(exc, streaming=False) from exc

    async def aclose(self) -> None:
        await self._client.close()

    # -- errors --------------------------------------------------------------------

    def _error(self, exc: Exception, *, streaming: bool) -> ProviderError:
        import anthropic
        import httpx2  # the transport under the anthropic SDK; its errors escape mid-stream

        if isinstance(exc, ProviderError):
            return exc
        name, key = self.name, self.config.api_key
        if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
            return ProviderTimeoutError(f"Provider '{name}' timed out", provider=name)
        if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
            if streaming:
                return ProviderStreamInterruptedError(
                    f"The connection to provider '{name}' broke mid-stream", provider=name
                )
            return ProviderUpstreamError(
                f"Could not connect to provider '{name}'", provider=name, retryable=True
            )
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            if status < 400:  # an `error` event inside a 200 stream
                status = _STREAM_ERROR_STATUS.get(exc.type or "", 500)
            detail = exc.api_message or exc.message
            return error_from_status(
                status,
                redact(detail, key),
                provider=name,
                retry_after=parse_retry_after(exc.response.headers),
            )
        if isinstance(exc, ValueError):  # undecodable JSON in the body
            return ProviderStreamInterruptedError(
                f"Provider '{name}' sent an unreadable response", provider=name
            )
        return ProviderUpstreamError(redact(f"Provider '{name}' failed: {exc}", key), provider=name)


def _messages_to_anthropic(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        blocks: list[dict[str, Any]]
        if message.role == "tool":
            role = "user"
            result: str | list[dict[str, Any]] = message.content
            if message.parts:
                result = [b for p in message.parts if (b := _block(p))]
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or "",
                    "content": result,
                }
            ]
        else:
            role = message.role
            if message.parts:
                blocks = [b for p in message.parts if (b := _block(p))]
            else:
                blocks = [{"type": "text", "text": message.content}] if message.content else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in message.tool_calls
            ]
        if not blocks:
            continue  # the API rejects empty turns
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # A lone text block reads better (and logs smaller) as a plain string.
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
    return turns


def _block(part: Part) -> dict[str, Any] | None:
    """A content part as an Anthropic content block (None for empty text, which the
    API rejects)."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        if part.url:
            return {"type": "image", "source": {"type": "url", "url": part.url}}
        source = {"type": "base64", "media_type": part.media_type, "data": part.base64()}
        return {"type": "image", "source": source}
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": part.media_type, "data": part.base64()},
    }
    if part.filename:
        block["title"] = part.filename
    return block


def _json_schema(response_format: dict | None) -> dict | None:
    if not response_format or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    return spec.get("schema") if isinstance(spec, dict) else None


def _usage(usage: Any) -> Usage:
    # Cached prompt tokens are billed input too; Anthropic reports them separately.
    inputs = (
        (usage.input_tokens or 0)
        + (getattr(usage, "cache_creation_input_tokens", None) or 0)
        + (getattr(usage, "cache_read_input_tokens", None) or 0)
    )
    return Usage(inputs, usage.output_tokens or 0)


def _cumulative(usage: Usage, delta: Any) -> Usage:
    """`usage` after a message_delta, whose counts are totals so far; it restates the
    input count only sometimes."""
    inputs = usage.input_tokens if delta.input_tokens is None else _usage(delta).input_tokens
    return replace(
        usage, input_tokens=inputs, output_tokens=delta.output_tokens or usage.output_tokens
    )


ANTHROPIC = ProviderDescriptor(
    name="anthropic",
    kind="anthropic",
    label="Anthropic",
    adapter=AnthropicProvider,
    settings=(
        Setting("ANTHROPIC_API_KEY", "api_key"),
        Setting("ANTHROPIC_BASE_URL", "base_url", "https://api.anthropic.com"),
        Setting("ANTHROPIC_DEFAULT_MODEL", "default_model", "claude-sonnet-5"),
        Setting("ANTHROPIC_MAX_TOKENS", "default_max_tokens", "1024", int),
    ),
    key_required=True,
    # Anthropic has no embeddings endpoint.
    capabilities=Capabilities(
        tools=True, images=True, documents=True, image_urls=True, embeddings=False
    ),
)
