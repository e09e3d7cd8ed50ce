"""Ollama's native /api/chat over httpx: newline-delimited JSON when streaming.

Ollama returns tool calls with arguments already parsed and without ids, all at once
(no argument fragments), and reports "stop" even when the model called tools; the
adapter assigns ids and normalizes the finish reason. Tool results carry the tool's
name (`tool_name`), looked up from the assistant turn when the message lacks it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from providers.core.base import Capabilities, Provider, ProviderConfig, ProviderDescriptor, Setting
from providers.core.content import ImagePart, Part, TextPart
from providers.core.errors import (
    ProviderBadRequestError,
    ProviderError,
    ProviderStreamInterruptedError,
    ProviderTimeoutError,
    ProviderUpstreamError,
    error_from_status,
    parse_retry_after,
    redact,
)
from providers.core.tooling import parse_arguments, tool_choice_mode
from providers.core.types import (
    ChatRequest,
    ChatResult,
    EmbeddingRequest,
    EmbeddingResult,
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
from providers.core.vendors.parts import lift_tool_parts, omitted

_DONE: dict[str, FinishReason] = {"stop": "stop", "length": "length"}


class OllamaProvider(Provider):
    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        headers = dict(config.extra_headers)
        if config.api_key:  # Ollama behind an authenticating proxy
            headers["Authorization"] = f"Bearer {config.api_key}"
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self._client = httpx.AsyncClient(
            base_url=(config.base_url or "http://localhost:11434").rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            limits=limits,
            transport=config.transport(limits=limits) if config.transport else None,
        )

    # -- request translation -------------------------------------------------------

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {
            "model": self.model_for(request),
            "messages": _messages_to_ollama(request.messages),
            "stream": stream,
        }
        # Ollama cannot force a tool; "none" is honoured by not offering any.
        if request.tools and tool_choice_mode(request.tool_choice) != "none":
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        options: dict[str, Any] = {}
        if p.temperature is not None:
            options["temperature"] = p.temperature
        if p.top_p is not None:
            options["top_p"] = p.top_p
        if p.max_tokens is not None:
            options["num_predict"] = p.max_tokens
        if p.stop:
            options["stop"] = list(p.stop)
        if options:
            body["options"] = options
        fmt = p.response_format or {}
        if fmt.get("type") == "json_object":
            body["format"] = "json"
        elif fmt.get("type") == "json_schema":
            body["format"] = (fmt.get("json_schema") or {}).get("schema") or "json"
        body.update(p.extra)
        return body

    # -- calls ---------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> ChatResult:
        try:
            response = await self._client.post(
                "/api/chat", json=self.build_body(request, stream=False)
            )
            if response.status_code >= 400:
                raise self._status_error(response)
            data = response.json()
        except Exception as exc:
            raise self._error(exc, streaming=False) from exc
        if data.get("error"):
            raise ProviderUpstreamError(
                redact(str(data["error"]), self.config.api_key), provider=self.name
            )
        message = data.get("message") or {}
        calls = tuple(_tool_call(raw) for raw in message.get("tool_calls") or ())
        return ChatResult(
            text=message.get("content") or "",
            tool_calls=calls,
            usage=_usage(data),
            finish_reason=_finish(data, bool(calls)),
            model=data.get("model") or self.model_for(request),
            provider=self.name,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        body = self.build_body(request, stream=True)
        calls_seen = 0
        final: dict[str, Any] | None = None
        reading = False  # errors while reading the body mean a cut-off stream
        try:
            async with self._client.stream("POST", "/api/chat", json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._status_error(response)
                reading = True
                async for line in self.wire_events(response.aiter_lines()):
                    if not line.strip():
                        continue
                    data = json.loads(line)
                    if data.get("error"):
                        detail = redact(str(data["error"]), self.config.api_key)
                        raise ProviderUpstreamError(detail, provider=self.name, retryable=True)
                    message = data.get("message") or {}
                    if message.get("content"):
                        yield TextDelta(message["content"])
                    for raw in message.get("tool_calls") or ():
                        yield ToolCallComplete(_tool_call(raw))
                        calls_seen += 1
                    if data.get("done"):
                        final = data
                        break
        except Exception as exc:
            raise self._error(exc, streaming=reading) from exc
        if final is None:
            raise ProviderStreamInterruptedError(
                "The response stream ended before the model finished", provider=self.name
            )
        yield UsageEvent(_usage(final))
        yield Finished(_finish(final, calls_seen > 0))

    # -- embeddings ----------------------------------------------------------------

    # Ollama sets no limit; one call of this many inputs stays well within its request
    # size and the read timeout on a CPU.
    max_embedding_inputs = 512

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """POST /api/embed; inputs over the model's context are truncated (Ollama's default)."""
        if any(not isinstance(i, str) for i in request.inputs):
            raise ProviderBadRequestError("Ollama embeds text, not token ids.", provider=self.name)
        model = request.model or self.default_model
        body: dict[str, Any] = {"model": model, "input": list(request.inputs)}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions  # newer Ollama versions; older ones ignore it
        try:
            response = await self._client.post("/api/embed", json=body)
            if response.status_code >= 400:
                raise self._status_error(response)
            data = response.json()
        except Exception as exc:
            raise self._error(exc, streaming=False) from exc
        vectors = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(vectors, list) or len(vectors) != len(request.inputs):
            raise ProviderUpstreamError(
                f"Provider '{self.name}' answered embeddings that do not match the "
                f"{len(request.inputs)} inputs",
                provider=self.name,
            )
        count = data.get("prompt_eval_count")
        return EmbeddingResult(
            vectors=tuple(_vector(v, self.name) for v in vectors),
            usage=Usage(input_tokens=count if isinstance(count, int) and count > 0 else 0),
            model=data.get("model") or model,
        )

    async def list_models(self) -> list[str]:
        try:
            response = await self._client.get("/api/tags")
            if response.status_code >= 400:
                raise self._status_error(response)
            return [m.get("name") or m.get("model") for m in response.json().get("models", [])]
        except Exception as exc:
            raise self._error(exc, streaming=False) from exc

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- errors --------------------------------------------------------------------

    def _status_error(self, response: httpx.Response) -> ProviderError:
        try:
            detail = str(response.json().get("error") or "")
        except ValueError:
            detail = response.text[:500]
        detail = detail or f"HTTP {response.status_code}"
        return error_from_status(
            response.status_code,
            redact(detail, self.config.api_key),
            provider=self.name,
            retry_after=parse_retry_after(response.headers),
        )

    def _error(self, exc: Exception, *, streaming: bool) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        name = self.name
        if isinstance(exc, httpx.TimeoutException):
            return ProviderTimeoutError(f"Provider '{name}' timed out", provider=name)
        if isinstance(exc, httpx.TransportError | ValueError) and streaming:
            return ProviderStreamInterruptedError(
                f"The connection to provider '{name}' broke mid-stream", provider=name
            )
        if isinstance(exc, httpx.TransportError):
            return ProviderUpstreamError(
                f"Could not connect to provider '{name}'", provider=name, retryable=True
            )
        if isinstance(exc, ValueError):
            return ProviderUpstreamError(
                f"Provider '{name}' sent an unreadable response", provider=name
            )
        return ProviderUpstreamError(
            redact(f"Provider '{name}' failed: {exc}", self.config.api_key), provider=name
        )


def _messages_to_ollama(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    names_by_id: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for message in lift_tool_parts(messages):
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.parts:
            item.update(_content_and_images(message.parts))
        if message.tool_calls:
            item["tool_calls"] = [
                {"function": {"name": c.name, "arguments": c.arguments}} for c in message.tool_calls
            ]
            names_by_id.update((c.id, c.name) for c in message.tool_calls)
        if message.role == "tool":
            tool_name = message.name or names_by_id.get(message.tool_call_id or "")
            if tool_name:
                item["tool_name"] = tool_name
        out.append(item)
    return out


def _content_and_images(parts: tuple[Part, ...]) -> dict[str, Any]:
    """Ollama's message: the text in `content`, images base64 in `images`; what it
    cannot take (documents, images not fetched) is named in the text instead."""
    texts: list[str] = []
    images: list[str] = []
    for part in parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ImagePart) and part.data is not None:
            images.append(part.base64())
        else:
            texts.append(omitted(part, "Ollama"))
    item: dict[str, Any] = {"content": "\n".join(t for t in texts if t)}
    if images:
        item["images"] = images
    return item


def _tool_call(raw: dict[str, Any]) -> ToolCall:
    function = raw.get("function") or {}
    return ToolCall(
        id=raw.get("id") or f"call_{uuid.uuid4().hex[:24]}",
        name=function.get("name") or "",
        arguments=parse_arguments(function.get("arguments")),
    )


def _finish(data: dict[str, Any], calls_seen: bool) -> FinishReason:
    if calls_seen:
        return "tool_calls"
    return _DONE.get(data.get("done_reason") or "stop", "stop")


def _vector(raw: object, provider: str) -> Sequence[float]:
    if not isinstance(raw, list):
        raise ProviderUpstreamError(
            f"Provider '{provider}' answered an embedding that is not a list", provider=provider
        )
    return raw


def _usage(data: dict[str, Any]) -> Usage:
    return Usage(data.get("prompt_eval_count") or 0, data.get("eval_count") or 0)


LOCAL = ProviderDescriptor(
    name="local",
    kind="ollama",
    label="Local (Ollama)",
    adapter=OllamaProvider,
    settings=(
        Setting("LOCAL_LLM_ENDPOINT", "base_url", "http://localhost:11434"),
        Setting("LOCAL_LLM_DEFAULT_MODEL", "default_model", "llama3.2"),
    ),
    key_required=False,
    # Images with vision models (`images` on a message); embeddings through /api/embed.
    capabilities=Capabilities(tools=True, images=True, documents=False, embeddings=True),
)
