"""Providers that wrap a provider: the base they share, and a provider asked for a model.

A wrapper is a `Provider` to whoever calls it, so the tool loop drives one provider
whatever is stacked around the vendor's adapter (retries, fallbacks, telemetry). It
describes itself as the provider it wraps (name, configuration, model), and it does not
own that provider's pooled clients: closing a wrapper closes nothing.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import replace

from providers.core.base import Provider
from providers.core.types import ChatRequest, ChatResult, StreamEvent, collect


def events_of(
    provider: Provider, request: ChatRequest, *, streaming: bool
) -> AsyncIterator[StreamEvent]:
    """`provider.stream(request)`, or, when nobody relays the stream, the events of one
    non-streaming call."""
    return provider.stream(request) if streaming else provider.result_events(request)


class WrapperProvider(Provider):
    """A provider around `wrapped`; subclasses say what one call does in `_events`."""

    def __init__(self, wrapped: Provider) -> None:
        super().__init__(wrapped.config)
        self.wrapped = wrapped

    def model_for(self, request: ChatRequest) -> str:
        return self.wrapped.model_for(request)

    @abc.abstractmethod
    def _events(self, request: ChatRequest, *, streaming: bool) -> AsyncIterator[StreamEvent]:
        """One call's events; `streaming` as in `events_of`."""

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        return self._events(request, streaming=True)

    def result_events(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        return self._events(request, streaming=False)

    async def complete(self, request: ChatRequest) -> ChatResult:
        return await collect(
            self.result_events(request), provider=self.name, model=self.model_for(request)
        )

    async def list_models(self) -> list[str]:
        return await self.wrapped.list_models()


class WithModel(WrapperProvider):
    """`wrapped` asked for `model` ("" = its default model), whatever the request names:
    a fallback runs the caller's request on another vendor's model. `extra` adds body
    fields only this provider's vendor knows."""

    def __init__(self, wrapped: Provider, model: str, extra: dict | None = None) -> None:
        super().__init__(wrapped)
        self.model = model
        self.extra = extra or {}  # body fields for this provider only (its vendor's own)

    def _request(self, request: ChatRequest) -> ChatRequest:
        if not self.extra:
            return replace(request, model=self.model)
        params = replace(request.params, extra={**request.params.extra, **self.extra})
        return replace(request, model=self.model, params=params)

    def model_for(self, request: ChatRequest) -> str:
        return self.wrapped.model_for(self._request(request))

    def _events(self, request: ChatRequest, *, streaming: bool) -> AsyncIterator[StreamEvent]:
        return events_of(self.wrapped, self._request(request), streaming=streaming)
