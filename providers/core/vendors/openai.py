"""OpenAI Chat Completions, for OpenAI itself and any OpenAI-compatible private cloud.

Chat requests are posted as plain JSON over keep-alive connections of the provider's
own (`providers.core.http1`; `httpx` when a proxy from the environment or a transport
of the connection's own applies, and for the other operations), and the answers
(JSON, or the SSE stream's `data:` lines) read as plain dicts: the official SDK's
request options and response models cost more CPU per call than the rest of the
gateway's work on it. `complete()` uses the vendor's non-streaming call, which is
cheaper than assembling a stream; both paths share the request translation and the
finish/usage mapping (`openai_wire`).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from providers.core import http1
from providers.core.base import Capabilities, Provider, ProviderConfig, ProviderDescriptor, Setting
from providers.core.errors import (
    ProviderError,
    ProviderStreamInterruptedError,
    ProviderTimeoutError,
    ProviderUpstreamError,
    error_from_status,
    parse_retry_after,
    redact,
)
from providers.core.http1 import Http1Pool, HttpError, HttpTimeout
from providers.core.tooling import parse_arguments
from providers.core.types import (
    ChatRequest,
    ChatResult,
    Finished,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
    UsageEvent,
)
from providers.core.vendors.openai_embeddings import OpenAIEmbeddings
from providers.core.vendors.openai_wire import (
    InStreamError,
    completed_calls,
    finish_from,
    message_to_openai,
    stream_chunks,
    tool_choice_to_openai,
    usage_from,
    vendor_message,
)
from providers.core.vendors.parts import lift_tool_parts


class OpenAIProvider(OpenAIEmbeddings, Provider):
    """kind "openai" and "openai_compatible": same protocol, different endpoint and key."""

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        self._base = str(config.base_url or "").rstrip("/")
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "llmwrapper",
            **(config.extra_headers or {}),
        }
        if config.api_key:  # keyless self-hosted endpoints get no Authorization at all
            headers["Authorization"] = f"Bearer {config.api_key}"
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
        self._http = httpx.AsyncClient(
            timeout=timeout,
            headers=headers,
            limits=limits,
            transport=config.transport(limits=limits) if config.transport else None,
        )
        # Built at the first call, with the headers as a subclass left them.
        self._pool: Http1Pool | None = None
        self._direct = config.transport is None and not _proxied(self._base)
        # OpenAI deprecated max_tokens for max_completion_tokens; compatible servers
        # (vLLM, llama.cpp, TGI...) mostly know only max_tokens.
        self._max_tokens_field = (
            "max_completion_tokens" if config.kind == "openai" else "max_tokens"
        )

    # -- request translation -------------------------------------------------------

    def build_kwargs(self, request: ChatRequest) -> dict[str, Any]:
        p = request.params
        kwargs: dict[str, Any] = {
            "model": self.model_for(request),
            "messages": [message_to_openai(m) for m in lift_tool_parts(request.messages)],
        }
        if request.tools:
            kwargs["tools"] = [
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
        if request.tool_choice is not None:
            kwargs["tool_choice"] = tool_choice_to_openai(request.tool_choice)
        if p.temperature is not None:
            kwargs["temperature"] = p.temperature
        if p.top_p is not None:
            kwargs["top_p"] = p.top_p
        if p.max_tokens is not None:
            kwargs[self._max_tokens_field] = p.max_tokens
        if p.stop:
            kwargs["stop"] = list(p.stop)
        if p.response_format is not None:
            kwargs["response_format"] = p.response_format
        if p.extra:
            kwargs.update(p.extra)
        return kwargs

    # -- calls ---------------------------------------------------------------------

    def _body(self, request: ChatRequest, *, stream: bool) -> bytes:
        body = self.build_kwargs(request)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    def _url(self, path: str, model: str) -> str:
        """The address of an operation (`/chat/completions`) for a model."""
        return self._base + path

    async def _send(self, body: bytes, *, stream: bool, model: str) -> Any:
        """POST /chat/completions; a status of 400 or more raises its ProviderError.
        The response (ours or httpx's) has `status_code`, `headers`, `aread`,
        `aiter_lines` and `aclose`."""
        url = self._url("/chat/completions", model)
        pool = self._pool_for(url)
        target = pool.target(url) if pool is not None else None
        if pool is not None and target is not None:
            response: Any = await pool.post(target, body)
        else:
            request = self._http.build_request("POST", url, content=body)
            response = await self._http.send(request, stream=stream)
        if response.status_code >= 400:
            try:
                raw = await response.aread()
            finally:
                await response.aclose()
            raise self._status_error(response, raw)
        return response

    def _pool_for(self, url: str) -> Http1Pool | None:
        if not (self._direct and http1.enabled()):
            return None
        if self._pool is None:
            headers = {
                name: value
                for name, value in self._http.headers.multi_items()
                if name.lower() not in _TRANSPORT_HEADERS
            }
            self._pool = Http1Pool(
                url,
                headers=headers,
                connect_timeout=self.config.connect_timeout,
                read_timeout=self.config.read_timeout,
                ssl_context=httpx.create_ssl_context() if url.startswith("https:") else None,
            )
        return self._pool

    async def complete(self, request: ChatRequest) -> ChatResult:
        try:
            body = self._body(request, stream=False)
            response = await self._send(body, stream=False, model=self.model_for(request))
            data = json.loads(await response.aread())
        except Exception as exc:
            raise self._error(exc, streaming=False) from exc
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            raise ProviderUpstreamError("The response had no choices", provider=self.name)
        choice = choices[0]
        message = choice.get("message") or {}
        calls = tuple(
            ToolCall(
                id=c.get("id") or f"call_{index}",
                name=c["function"].get("name") or "",
                arguments=parse_arguments(c["function"].get("arguments")),
            )
            for index, c in enumerate(message.get("tool_calls") or ())
            if isinstance(c.get("function"), dict)
        )
        return ChatResult(
            text=message.get("content") or "",
            tool_calls=calls,
            usage=usage_from(data.get("usage")),
            finish_reason=finish_from(choice.get("finish_reason"), bool(calls)),
            model=data.get("model") or self.model_for(request),
            provider=self.name,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        body = self._body(request, stream=True)
        try:
            response = await self._send(body, stream=True, model=self.model_for(request))
        except Exception as exc:
            raise self._error(exc, streaming=False) from exc

        calls: dict[int, dict[str, Any]] = {}  # index -> {"id", "name", "args": [..]}
        finish: str | None = None
        saw_calls = False
        usage = Usage()
        try:
            async for chunk in self.wire_events(stream_chunks(response)):
                if chunk.get("usage"):
                    usage = usage_from(chunk["usage"])
                choices = chunk.get("choices")
                if not choices:
                    continue
                choice = choices[0]
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    yield TextDelta(delta["content"])
                for tc in delta.get("tool_calls") or ():
                    state = calls.setdefault(
                        tc.get("index", 0), {"id": None, "name": None, "args": []}
                    )
                    function = tc.get("function") or {}
                    state["id"] = state["id"] or tc.get("id")
                    state["name"] = state["name"] or function.get("name")
                    state["args"].append(function.get("arguments") or "")
                if choice.get("finish_reason") is not None:
                    finish = choice["finish_reason"]
                    saw_calls = saw_calls or bool(calls)
                    # Calls are complete once the model says it is done.
                    for event in completed_calls(calls):
                        yield event
                    calls.clear()
        except Exception as exc:
            raise self._error(exc, streaming=True) from exc
        finally:
            await response.aclose()
        if finish is None:
            raise ProviderStreamInterruptedError(
                "The response stream ended before the model finished", provider=self.name
            )
        yield UsageEvent(usage)
        yield Finished(finish_from(finish, saw_calls))

    async def list_models(self) -> list[str]:
        try:
            response = await self._http.get(self._base + "/models")
            if response.status_code >= 400:
                raise self._status_error(response, response.content)
            return [model["id"] for model in response.json().get("data") or ()]
        except Exception as exc:
            raise self._error(exc, streaming=False) from exc

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        await self._http.aclose()

    # -- errors --------------------------------------------------------------------

    def _status_error(self, response: Any, raw: bytes) -> ProviderError:
        text = raw.decode("utf-8", "replace")
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = None
        detail = vendor_message(body) or f"Error code: {response.status_code} - {text[:500]}"
        return error_from_status(
            response.status_code,
            redact(detail, self.config.api_key),
            provider=self.name,
            retry_after=parse_retry_after(response.headers),
        )

    def _error(self, exc: Exception, *, streaming: bool) -> ProviderError:
        """Translate a transport exception. `streaming` = raised while reading the body."""
        if isinstance(exc, ProviderError):
            return exc
        name, key = self.name, self.config.api_key
        if isinstance(exc, httpx.TimeoutException | HttpTimeout):
            return ProviderTimeoutError(f"Provider '{name}' timed out", provider=name)
        if isinstance(exc, httpx.TransportError | HttpError):
            if streaming:
                return ProviderStreamInterruptedError(
                    f"The connection to provider '{name}' broke mid-stream", provider=name
                )
            return ProviderUpstreamError(
                f"Could not connect to provider '{name}'", provider=name, retryable=True
            )
        if isinstance(exc, InStreamError):
            # An error object sent inside an otherwise successful stream.
            detail = vendor_message(exc.body) or "The provider reported an error mid-stream"
            return ProviderUpstreamError(redact(detail, key), provider=name, retryable=True)
        if isinstance(exc, ValueError):  # undecodable JSON in the body
            return ProviderStreamInterruptedError(
                f"Provider '{name}' sent an unreadable response", provider=name
            )
        return ProviderUpstreamError(redact(f"Provider '{name}' failed: {exc}", key), provider=name)


# What the connection itself decides (our client asks for no compression).
_TRANSPORT_HEADERS = {"accept-encoding", "connection", "host", "content-length"}


def _proxied(base_url: str) -> bool:
    """Whether the environment sends `base_url` through a proxy (as httpx reads it)."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass_environment(parts.hostname or "", proxies)


OPENAI = ProviderDescriptor(
    name="openai",
    kind="openai",
    label="OpenAI",
    adapter=OpenAIProvider,
    settings=(
        Setting("OPENAI_API_KEY", "api_key"),
        Setting("OPENAI_BASE_URL", "base_url", "https://api.openai.com/v1"),
        Setting("OPENAI_DEFAULT_MODEL", "default_model", "gpt-4o-mini"),
    ),
    key_required=True,
    capabilities=Capabilities(
        tools=True, images=True, documents=True, image_urls=True, embeddings=True
    ),
)

# Any OpenAI-compatible server (vLLM, LM Studio, gateways): the same adapter, an endpoint
# of the operator's choosing, a key only if that server wants one.
PRIVATE = ProviderDescriptor(
    name="private",
    kind="openai_compatible",
    label="Private OpenAI-compatible cloud",
    adapter=OpenAIProvider,
    settings=(
        Setting("PRIVATE_CLOUD_ENDPOINT", "base_url"),
        Setting("PRIVATE_CLOUD_API_KEY", "api_key"),
        Setting("PRIVATE_CLOUD_DEFAULT_MODEL", "default_model", "default"),
    ),
    key_required=False,
    # Tools are part of the protocol; image and document parts are passed as given (the
    # server's models decide what they take); /embeddings is served by vLLM, TEI, LM
    # Studio and the gateways (a server without it answers 404: model_not_found).
    capabilities=Capabilities(
        tools=True, images=True, documents=True, image_urls=True, embeddings=True
    ),
)
