"""Retries with backoff, fallback along a chain of providers, and the total time of one
model call: each a provider wrapping a provider.

`resilient(chain, policy)` stacks them for the tool loop:
`WithDeadline(WithFallbacks([Retrying(p, policy) for p in chain]), policy.total_timeout)`.

Rules, for both streaming and non-streaming calls:
- `Retrying`: retryable errors (429, 408/409, 5xx, timeouts, connection failures,
  streams cut off before any output) are retried up to `max_retries` times, with
  exponential backoff and full jitter; a Retry-After from the vendor replaces the
  computed delay, capped at `max_delay`. Other 4xx are never retried. A stream that
  ends without a `Finished` event raises `ProviderStreamInterruptedError`.
- `WithFallbacks`: when a provider gives up (retries exhausted or a non-retryable
  error), the next one in the chain is tried, except after `ProviderBadRequestError`:
  the caller's request is at fault and another vendor would only hide the real error.
  When every provider failed, the last error is raised.
- Once any output (text, a tool call, usage, the finish) has been yielded, nothing is
  retried or switched: the error is raised as is, and the caller reports it (a partial
  answer cannot be undone).

Deadlines: `WithDeadline` ends one model call (every attempt on every provider of the
chain) within its seconds; when they run out, the call raises `ProviderTimeoutError`
(504), also mid-stream. Fallbacks get what is left of that time, not a fresh allowance:
the client waits at most the total, however long the chain. An attempt (a retry or a
fallback) starts only when the time left exceeds its backoff pause plus the provider's
idle limit (`ProviderConfig.idle_timeout`, enforced by the adapters on every stream
through `Provider.wire_events`): a shorter attempt would be cut off before it could
answer, and would only cost the vendor a request; the error at hand is raised instead,
and the call makes no further attempt. In a tool loop, each model call has its own
deadline.

The way to the answer is in the stream, as attempt events (`providers.core.types`):
`Retrying` yields `AttemptStarted` before each attempt and `AttemptFailed` before each
retry, `WithFallbacks` yields `AttemptFailed` before trying the next provider.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TypeVar

from providers.core.base import Provider
from providers.core.errors import (
    ProviderBadRequestError,
    ProviderError,
    ProviderStreamInterruptedError,
    ProviderTimeoutError,
)
from providers.core.timers import Watch
from providers.core.types import (
    AttemptFailed,
    AttemptStarted,
    ChatRequest,
    Finished,
    OutputEvent,
    StreamEvent,
)
from providers.core.wrapper import WrapperProvider, events_of

logger = logging.getLogger(__name__)

# Primary first; each provider asks for its own model (see `providers.core.wrapper.WithModel`).
ProviderChain = list[Provider]
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


_current_deadline: ContextVar[Deadline | None] = ContextVar("provider_deadline", default=None)


def _now() -> float:
    return asyncio.get_running_loop().time()


class Deadline:
    """The end of one model call's time, shared by all its attempts and fallbacks."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds if seconds and seconds > 0 else None
        self.when = None if self.seconds is None else _now() + self.seconds
        self._spent = False
        self._watch = Watch()

    @staticmethod
    def current() -> Deadline:
        """The deadline of the call under way (a `WithDeadline` reading its provider's
        events makes its own current), or none."""
        return _current_deadline.get() or Deadline(None)

    def remaining(self) -> float:
        return float("inf") if self.when is None else self.when - _now()

    def allows(self, provider: Provider, pause: float = 0.0) -> bool:
        """Whether an attempt on `provider` after `pause` seconds could still answer.
        Once the answer is no, it stays no: the call makes no further attempt."""
        idle = provider.config.idle_timeout or 0.0
        self._spent = self._spent or self.remaining() <= pause + idle
        return not self._spent

    async def next(self, events: AsyncIterator[T], provider: str) -> T | None:
        """The next item of `events` within the deadline, or None at their end; past
        the deadline, `ProviderTimeoutError` for `provider`."""
        token = _current_deadline.set(self)
        try:
            if self.when is None:
                return await anext(events)
            with self._watch.until(self.when):
                return await anext(events)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            if not self._watch.expired:
                raise
            raise self.error(provider) from None
        finally:
            _current_deadline.reset(token)

    def close(self) -> None:
        """The call is over: its timer goes."""
        self._watch.close()

    def error(self, provider: str) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"Provider '{provider}' did not finish within {self.seconds:g}s",
            provider=provider,
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


class Retrying(WrapperProvider):
    """`wrapped`, its failures retried with backoff until it answers or gives up."""

    def __init__(self, wrapped: Provider, policy: RetryPolicy | None = None) -> None:
        super().__init__(wrapped)
        self.policy = policy or RetryPolicy()

    async def _events(self, request: ChatRequest, *, streaming: bool) -> AsyncIterator[StreamEvent]:
        provider, policy = self.wrapped, self.policy
        started = AttemptStarted(provider.name, provider.model_for(request), provider.config.kind)
        for attempt in range(policy.max_retries + 1):
            yield started
            delivered = finished = False
            try:
                async with aclosing(events_of(provider, request, streaming=streaming)) as events:
                    async for event in events:
                        delivered = delivered or isinstance(event, OutputEvent)
                        finished = finished or isinstance(event, Finished)
                        yield event
                if not finished:
                    raise ProviderStreamInterruptedError(
                        "The response stream ended before the model finished",
                        provider=provider.name,
                    )
                return
            except ProviderError as exc:
                if delivered or not _should_retry(exc, attempt, policy):
                    raise
                delay = policy.delay(attempt, exc)
                if not Deadline.current().allows(provider, delay):
                    raise
                yield AttemptFailed(exc)
                await _pause(provider, attempt, exc, delay)


class WithFallbacks(WrapperProvider):
    """The first of `members` that answers, tried in order; it describes itself as the
    first. Members are usually `Retrying` providers, which report their attempts."""

    def __init__(self, members: Sequence[Provider]) -> None:
        if not members:
            raise ValueError("WithFallbacks needs at least one provider")
        super().__init__(members[0])
        self.members = tuple(members)

    async def _events(self, request: ChatRequest, *, streaming: bool) -> AsyncIterator[StreamEvent]:
        following = (*self.members[1:], None)
        for member, fallback in zip(self.members, following, strict=True):
            delivered = False
            try:
                async with aclosing(events_of(member, request, streaming=streaming)) as events:
                    async for event in events:
                        delivered = delivered or isinstance(event, OutputEvent)
                        yield event
                return
            except ProviderError as exc:
                if delivered or fallback is None or not _may_fall_back(exc):
                    raise
                if not Deadline.current().allows(fallback):
                    raise
                yield AttemptFailed(exc)


class WithDeadline(WrapperProvider):
    """`wrapped`, each call of it over within `seconds` (None or 0: no limit)."""

    def __init__(self, wrapped: Provider, seconds: float | None) -> None:
        super().__init__(wrapped)
        self.seconds = seconds

    async def _events(self, request: ChatRequest, *, streaming: bool) -> AsyncIterator[StreamEvent]:
        deadline = Deadline(self.seconds)
        attempting = self.wrapped.name  # who a timeout names
        try:
            async with aclosing(events_of(self.wrapped, request, streaming=streaming)) as events:
                while (event := await deadline.next(events, attempting)) is not None:
                    if isinstance(event, AttemptStarted):
                        attempting = event.provider
                    yield event
        finally:
            deadline.close()


class CoolingDown(WrapperProvider):
    """One deployment of a route: a failure that another deployment may not share (429,
    5xx, a timeout, a dropped connection) before any output is reported to `cool`
    (which rests the deployment for a while) and the call moves on to the next member
    at once: `resilient` does not retry a cooling-down member unless it is the last."""

    def __init__(self, wrapped: Provider, cool: Callable[[ProviderError], None]) -> None:
        super().__init__(wrapped)
        self.cool = cool

    async def _events(self, request: ChatRequest, *, streaming: bool) -> AsyncIterator[StreamEvent]:
        delivered = False
        try:
            async with aclosing(events_of(self.wrapped, request, streaming=streaming)) as events:
                async for event in events:
                    delivered = delivered or isinstance(event, OutputEvent)
                    yield event
        except ProviderError as exc:
            if exc.retryable and not delivered:
                self.cool(exc)
            raise


def resilient(chain: Sequence[Provider], policy: RetryPolicy | None = None) -> Provider:
    """The chain as one provider: each member retried, then the next one tried, all
    within the policy's total time. A route's deployment (`CoolingDown`) is tried once,
    unless no member follows it."""
    policy = policy or RetryPolicy()
    once = replace(policy, max_retries=0)
    members = [
        Retrying(p, once if isinstance(p, CoolingDown) and i < len(chain) - 1 else policy)
        for i, p in enumerate(chain)
    ]
    return WithDeadline(WithFallbacks(members), policy.total_timeout)
