"""Telemetry as a provider: a span, metrics and the request log's figures for each call.

The core records nothing itself: what observes a call is handed in (`CallObserver`;
the Django side passes `llmwrapper.observability.genai.observe_provider_call`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, aclosing
from typing import Any

from providers.core.base import Provider
from providers.core.types import (
    AttemptFailed,
    AttemptStarted,
    ChatRequest,
    Finished,
    StreamEvent,
    TextDelta,
    ToolCallComplete,
    Usage,
    UsageEvent,
)
from providers.core.wrapper import WrapperProvider, events_of

# (provider, request) -> a context manager giving the observed call: `events(...)`,
# `attempt_started`, `attempt_failed`, `output_started`, `complete(usage, ...)`.
CallObserver = Callable[[Provider, ChatRequest], AbstractContextManager[Any]]


class Observed(WrapperProvider):
    """`wrapped`, each call of it (retries and fallbacks included) observed as one."""

    def __init__(self, wrapped: Provider, observe: CallObserver) -> None:
        super().__init__(wrapped)
        self.observe = observe

    async def _events(self, request: ChatRequest, *, streaming: bool) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        first_token_ms: int | None = None
        usage = Usage()
        finish = "stop"
        # A failure or the consumer closing this generator leaves the block with an
        # exception, which records a failed call.
        with self.observe(self.wrapped, request) as call:
            async with aclosing(events_of(self.wrapped, request, streaming=streaming)) as events:
                async for event in call.events(events):
                    if isinstance(event, AttemptStarted):
                        call.attempt_started(event)
                    elif isinstance(event, AttemptFailed):
                        call.attempt_failed(event.error)
                    else:
                        call.output_started()
                        if first_token_ms is None and isinstance(
                            event, TextDelta | ToolCallComplete
                        ):
                            first_token_ms = int((time.perf_counter() - started) * 1000)
                        if isinstance(event, UsageEvent):
                            usage = event.usage
                        elif isinstance(event, Finished):
                            finish = event.reason
                    yield event
            call.complete(usage, finish_reason=finish, first_token_ms=first_token_ms)
