"""The provider interface every vendor adapter implements, its configuration, and the
descriptor with which each adapter describes its vendor."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from providers.core.errors import ProviderBadRequestError, ProviderTimeoutError
from providers.core.timers import Watch
from providers.core.types import (
    ChatRequest,
    ChatResult,
    EmbeddingRequest,
    EmbeddingResult,
    Finished,
    StreamEvent,
    TextDelta,
    ToolCallComplete,
    UsageEvent,
    collect,
)

ProviderKind = Literal["openai", "anthropic", "ollama", "openai_compatible", "azure_openai"]
T = TypeVar("T")


@dataclass
class ProviderConfig:
    name: str
    kind: ProviderKind | str
    api_key: str | None = None
    base_url: str | None = None
    default_model: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 120.0  # per socket read
    # Longest wait for the next whole event of a stream (None or 0: no limit).
    idle_timeout: float | None = 60.0
    env_hint: str = ""  # the variable to set when this provider is not configured
    # Hosted vendors refuse calls without a key: without one the provider counts as not
    # configured (a clear 400 naming the variable) instead of failing upstream (502).
    key_required: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)
    # Anthropic requires max_tokens on every request; used when the caller gives none.
    default_max_tokens: int = 1024
    # Builds the httpx transport of the adapter's client, called with the transport's
    # options (`limits`): e.g. one through the outbound guard, for endpoints a tenant
    # named. None: httpx's own.
    transport: Callable[..., Any] | None = None
    # Adapter-specific settings (e.g. Azure's `api_version`).
    options: dict[str, str] = field(default_factory=dict)
    # What identifies this configuration among the instances a process keeps ("" = the
    # name): a stored connection's id and version, so an edit builds a new instance.
    cache_key: str = ""

    def __repr__(self) -> str:
        # Keys end up in logs through reprs; never print them.
        key = "***" if self.api_key else None
        return (
            f"ProviderConfig(name={self.name!r}, kind={self.kind!r}, api_key={key!r}, "
            f"base_url={self.base_url!r}, default_model={self.default_model!r})"
        )


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable (and Django setting) a provider reads."""

    name: str  # e.g. "OPENAI_API_KEY"
    field: str  # the ProviderConfig field it fills: api_key, base_url, default_model...
    default: str = ""  # "" = unset
    parse: Callable[[str], object] = str


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the vendor's API accepts; the pipeline refuses parts the primary cannot take."""

    tools: bool = False
    images: bool = False  # image parts in user messages (providers.core.content)
    documents: bool = False  # PDF parts
    image_urls: bool = False  # fetches https:// images itself (else the gateway sends bytes)
    embeddings: bool = False


@dataclass(frozen=True, slots=True)
class ProviderDescriptor:
    """A vendor as its adapter describes it; `providers.core.descriptors` registers them, and
    the registry, the settings, the default_provider choices and the model listing are
    all derived from that list."""

    name: str  # how requests and subtenants name it: "openai", "local"...
    kind: str  # the adapter's protocol: "openai", "openai_compatible", "ollama"...
    label: str  # for humans (admin choices)
    adapter: Callable[[ProviderConfig], Provider]
    settings: tuple[Setting, ...]
    key_required: bool
    capabilities: Capabilities

    def setting(self, field: str) -> Setting | None:
        """The setting that fills a ProviderConfig field, if the vendor has one."""
        return next((s for s in self.settings if s.field == field), None)

    @property
    def default_model(self) -> str:
        setting = self.setting("default_model")
        return setting.default if setting else ""


class Provider(abc.ABC):
    """One configured upstream. Instances hold pooled SDK clients: build once, reuse.

    Adapters never let an SDK or transport exception escape: everything becomes a
    `providers.core.errors.ProviderError`. A stream either ends with a `Finished` event or
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

    def wire_events(self, source: AsyncIterable[T]) -> AsyncIterator[T]:
        """The whole events (SSE events, NDJSON lines) of a response stream, each one
        within the idle limit: adapters read their vendor's stream through this.

        The limit counts events, not bytes: a vendor trickling bytes that never make an
        event is cut off, one sending a steady stream of small events is not. Time the
        caller spends between two reads does not count.
        """
        return _Paced(source, self.config.idle_timeout, self.name)

    async def list_models(self) -> list[str]:
        return [self.default_model] if self.default_model else []

    # Embeddings: adapters whose vendor embeds override `embed` and say how many inputs
    # one vendor call takes (larger requests are split) and whether inputs may be token ids.
    max_embedding_inputs: int = 2048
    embeds_token_ids: bool = False

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """One vendor call: a vector per input, in order."""
        raise EmbeddingsNotSupportedError(self.name)

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters override it
        """Release pooled connections."""


class _Paced(Generic[T]):
    """An async iterator that raises `ProviderTimeoutError` when its source is idle."""

    def __init__(self, source: AsyncIterable[T], idle: float | None, provider: str) -> None:
        self._source = aiter(source)
        self._idle = idle if idle and idle > 0 else None
        self._provider = provider
        self._watch = Watch()  # one timer for the whole stream

    def __aiter__(self) -> _Paced[T]:
        return self

    async def __anext__(self) -> T:
        if self._idle is None:
            return await anext(self._source)
        try:
            with self._watch.within(self._idle):
                return await anext(self._source)
        except BaseException as exc:
            self._watch.close()  # the stream ended (or failed): its timer goes
            if not isinstance(exc, TimeoutError) or not self._watch.expired:
                raise
            raise ProviderTimeoutError(
                f"Provider '{self._provider}' sent nothing for {self._idle:g}s",
                provider=self._provider,
                details={"timeout": "idle", "timeout_s": self._idle},
            ) from None


class EmbeddingsNotSupportedError(ProviderBadRequestError):
    """The vendor has no embeddings API: a 400, never retried nor sent elsewhere."""

    type = "embeddings_not_supported"

    def __init__(self, provider: str, embedding_providers: tuple[str, ...] = ()) -> None:
        those = (
            f" (providers that do: {', '.join(embedding_providers)})" if embedding_providers else ""
        )
        super().__init__(
            f"Provider '{provider}' does not do embeddings{those}.",
            provider=provider,
            details={"embedding_providers": list(embedding_providers)},
        )
