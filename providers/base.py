"""The provider interface every vendor adapter implements, and its configuration."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from providers.types import (
    ChatRequest,
    ChatResult,
    Finished,
    StreamEvent,
    TextDelta,
    ToolCallComplete,
    UsageEvent,
    collect,
)

ProviderKind = Literal["openai", "anthropic", "ollama", "openai_compatible"]


@dataclass
class ProviderConfig:
    name: str
    kind: ProviderKind | str
    api_key: str | None = None
    base_url: str | None = None
    default_model: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    env_hint: str = ""  # the variable to set when this provider is not configured
    extra_headers: dict[str, str] = field(default_factory=dict)
    # Anthropic requires max_tokens on every request; used when the caller gives none.
    default_max_tokens: int = 1024

    def __repr__(self) -> str:
        # Keys end up in logs through reprs; never print them.
        key = "***" if self.api_key else None
        return (
            f"ProviderConfig(name={self.name!r}, kind={self.kind!r}, api_key={key!r}, "
            f"base_url={self.base_url!r}, default_model={self.default_model!r})"
        )


class Provider(abc.ABC):
    """One configured upstream. Instances hold pooled SDK clients: build once, reuse.

    Adapters never let an SDK or transport exception escape: everything becomes a
    `providers.errors.ProviderError`. A stream either ends with a `Finished` event or
    raises; it never ends silently truncated.
    """

    name: str
    default_model: str

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name
        self.default_model = config.default_model

    def model_for(self, request: ChatRequest) -> str:
        return request.model or self.default_model

    @abc.abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream normalized events; implemented as an async generator."""

    async def complete(self, request: ChatRequest) -> ChatResult:
        return await collect(
            self.stream(request), provider=self.name, model=self.model_for(request)
        )

    async def result_events(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """`complete()` as events, for callers that do not relay a stream: one
        non-streaming vendor call is cheaper than parsing a stream of chunks."""
        result = await self.complete(request)
        if result.text:
            yield TextDelta(result.text)
        for call in result.tool_calls:
            yield ToolCallComplete(call)
        yield UsageEvent(result.usage)
        yield Finished(result.finish_reason)  # type: ignore[arg-type]

    async def list_models(self) -> list[str]:
        return [self.default_model] if self.default_model else []

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters override it
        """Release pooled connections."""
