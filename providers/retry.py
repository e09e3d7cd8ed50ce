"""Retries with backoff, and fallback along a chain of (provider, request) pairs.

Rules, for both streaming and non-streaming calls:
- Retryable errors (429, 408/409, 5xx, timeouts, connection failures, streams cut off
  before anything was delivered) are retried up to `max_retries` times per provider,
  with exponential backoff and full jitter; a Retry-After from the vendor replaces the
  computed delay, capped at `max_delay`. Other 4xx are never retried.
- When a provider gives up (retries exhausted or a non-retryable error), the next pair
  in the chain is tried, except after `ProviderBadRequestError`: the caller's request
  is at fault and another vendor would only hide the real error.
- Once any event has been yielded to the caller, nothing is retried or switched: the
  error is raised as is, and the caller reports it (a partial answer cannot be undone).
  A stream that ends without a `Finished` event raises `ProviderStreamInterruptedError`.
- When every provider failed, the last error is raised; all errors are kept in order.

Which provider answered: `stream_with_retries` returns a `ResilientStream`, an async
iterator of events whose `provider` and `model` attributes are set just before its
first event is yielded (and `attempts` / `errors` record the way there).
`complete_with_retries` returns a `ChatResult`, whose `provider` and `model` already
name the answering provider.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from providers.base import Provider
from providers.errors import (
    ProviderBadRequestError,
    ProviderError,
    ProviderStreamInterruptedError,
)
from providers.types import ChatRequest, ChatResult, Finished, StreamEvent

logger = logging.getLogger(__name__)

ProviderChain = list[tuple[Provider, ChatRequest]]


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int, error: ProviderError) -> float:
        """Seconds to wait before retry number `attempt + 1`."""
        if error.retry_after is not None:
            return min(error.retry_after, self.max_delay)
        # Full jitter spreads retries of many clients hit by the same outage.
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))  # noqa: S311


def _should_retry(error: ProviderError, attempt: int, policy: RetryPolicy) -> bool:
    return error.retryable and attempt < policy.max_retries


def _may_fall_back(error: ProviderError) -> bool:
    return not isinstance(error, ProviderBadRequestError)


async def _pause(
    provider: Provider, attempt: int, error: ProviderError, policy: RetryPolicy
) -> None:
    delay = policy.delay(attempt, error)
    logger.warning(
        "provider %s failed (%s, upstream %s); retry %d in %.2fs",
        provider.name,
        error.type,
        error.upstream_status,
        attempt + 1,
        delay,
    )
    await asyncio.sleep(delay)


class ResilientStream:
    """Events from the first provider of the chain that manages to answer."""

    def __init__(
        self, chain: ProviderChain, policy: RetryPolicy | None = None, *, streaming: bool = True
    ) -> None:
        if not chain:
            raise ValueError("stream_with_retries needs at least one provider")
        self.chain = list(chain)
        # Not streaming: each provider answers with one non-streaming call, as events.
        self.streaming = streaming
        self.policy = policy or RetryPolicy()
        self.provider: str | None = None
        self.model: str | None = None
        self.attempts = 0
        self.errors: list[ProviderError] = []
        self._events = self._run()

    def __aiter__(self) -> ResilientStream:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop early (client gone): closes the upstream response too."""
        await self._events.aclose()

    async def _run(self) -> AsyncGenerator[StreamEvent, None]:
        for provider, request in self.chain:
            error: ProviderError | None = None
            for attempt in range(self.policy.max_retries + 1):
                self.attempts += 1
                delivered = finished = False
                try:
                    source = provider.stream if self.streaming else provider.result_events
                    async with aclosing(source(request)) as events:
                        async for event in events:
                            if not delivered:
                                self.provider = provider.name
                                self.model = provider.model_for(request)
                                delivered = True
                            finished = finished or isinstance(event, Finished)
                            yield event
                    if not finished:
                        raise ProviderStreamInterruptedError(
                            "The response stream ended before the model finished",
                            provider=provider.name,
                        )
                    return
                except ProviderError as exc:
                    if delivered:
                        raise
                    error = exc
                    self.errors.append(exc)
                    if not _should_retry(exc, attempt, self.policy):
                        break
                    await _pause(provider, attempt, exc, self.policy)
            assert error is not None
            if not _may_fall_back(error):
                raise error
        raise self.errors[-1]


def stream_with_retries(
    provider_chain: ProviderChain, policy: RetryPolicy | None = None, *, streaming: bool = True
) -> ResilientStream:
    """Stream from the first provider that answers; see the module docstring."""
    return ResilientStream(provider_chain, policy, streaming=streaming)


async def complete_with_retries(
    provider_chain: ProviderChain, policy: RetryPolicy | None = None
) -> ChatResult:
    """One completion from the first provider that answers; see the module docstring."""
    if not provider_chain:
        raise ValueError("complete_with_retries needs at least one provider")
    policy = policy or RetryPolicy()
    errors: list[ProviderError] = []
    for provider, request in provider_chain:
        for attempt in range(policy.max_retries + 1):
            try:
                return await provider.complete(request)
            except ProviderError as exc:
                errors.append(exc)
                if not _should_retry(exc, attempt, policy):
                    break
                await _pause(provider, attempt, exc, policy)
        if not _may_fall_back(errors[-1]):
            raise errors[-1]
    raise errors[-1]
