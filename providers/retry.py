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

Deadlines: one model call (every attempt on every provider of the chain) ends within
`policy.total_timeout` seconds of its start; when they run out, the call raises
`ProviderTimeoutError` (504), also mid-stream. Fallbacks get what is left of that time,
not a fresh allowance: the client waits at most the total, however long the chain.
An attempt (a retry or a fallback) starts only when the time left exceeds its backoff
pause plus the provider's idle limit (`ProviderConfig.idle_timeout`, enforced by the
adapters on every stream through `Provider.wire_events`): a shorter attempt would be
cut off before it could answer, and would only cost the vendor a request; the error at
hand is raised instead. In a tool loop, each model call has its own deadline.

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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar

from providers.base import Provider
from providers.errors import (
    ProviderBadRequestError,
    ProviderError,
    ProviderStreamInterruptedError,
    ProviderTimeoutError,
)
from providers.types import ChatRequest, ChatResult, Finished, StreamEvent

logger = logging.getLogger(__name__)

ProviderChain = list[tuple[Provider, ChatRequest]]
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    # Seconds for one model call, all attempts and fallbacks included (None or 0: none).
    total_timeout: float | None = 300.0

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


class Deadline:
    """The end of one model call's time, shared by all its attempts and fallbacks."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds if seconds and seconds > 0 else None
        loop = asyncio.get_running_loop()
        self.when = None if self.seconds is None else loop.time() + self.seconds
        self._loop = loop

    def remaining(self) -> float:
        return float("inf") if self.when is None else self.when - self._loop.time()

    def allows(self, provider: Provider, pause: float = 0.0) -> bool:
        """Whether an attempt on `provider` after `pause` seconds could still answer."""
        return self.remaining() > pause + (provider.config.idle_timeout or 0.0)

    async def run(self, awaitable: Awaitable[T], provider: Provider) -> T:
        """Await within the deadline, or raise `ProviderTimeoutError` for `provider`."""
        if self.when is None:
            return await awaitable
        try:
            async with asyncio.timeout_at(self.when) as scope:
                return await awaitable
        except TimeoutError:
            if not scope.expired():
                raise
            raise self.error(provider) from None

    async def next(self, events: AsyncIterator[T], provider: Provider) -> T | None:
        """The next item of `events` within the deadline; None at its end."""
        try:
            return await self.run(anext(events), provider)
        except StopAsyncIteration:
            return None

    def error(self, provider: Provider) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"Provider '{provider.name}' did not finish within {self.seconds:g}s",
            provider=provider.name,
            details={"timeout": "total", "timeout_s": self.seconds},
        )


async def _pause(provider: Provider, attempt: int, error: ProviderError, delay: float) -> None:
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
        deadline = Deadline(self.policy.total_timeout)
        for position, (provider, request) in enumerate(self.chain):
            if position and not deadline.allows(provider):
                raise self.errors[-1]
            error: ProviderError | None = None
            for attempt in range(self.policy.max_retries + 1):
                self.attempts += 1
                delivered = finished = False
                try:
                    source = provider.stream if self.streaming else provider.result_events
                    async with aclosing(source(request)) as events:
                        while (event := await deadline.next(events, provider)) is not None:
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
                    delay = self.policy.delay(attempt, exc)
                    if not deadline.allows(provider, delay):
                        raise
                    await _pause(provider, attempt, exc, delay)
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
    deadline = Deadline(policy.total_timeout)
    errors: list[ProviderError] = []
    for position, (provider, request) in enumerate(provider_chain):
        if position and not deadline.allows(provider):
            raise errors[-1]
        for attempt in range(policy.max_retries + 1):
            try:
                return await deadline.run(provider.complete(request), provider)
            except ProviderError as exc:
                errors.append(exc)
                if not _should_retry(exc, attempt, policy):
                    break
                delay = policy.delay(attempt, exc)
                if not deadline.allows(provider, delay):
                    raise
                await _pause(provider, attempt, exc, delay)
        if not _may_fall_back(errors[-1]):
            raise errors[-1]
    raise errors[-1]
