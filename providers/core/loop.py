"""The tool loop: call the model, run the tools the server owns, call the model again.

Chat sends, direct calls and the OpenAI-compatible API all run a turn through
`run_turn`; each transport only formats the events it yields. Server-side tools come
from a `ToolExecutor` (implemented by the tools app); tools it does not own are handed
back to the client as tool calls (finish reason `tool_calls`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Protocol

from providers.core.content import Part, TextPart
from providers.core.errors import ProviderError
from providers.core.observed import CallObserver, Observed
from providers.core.retry import ProviderChain, RetryPolicy, resilient
from providers.core.types import (
    AttemptStarted,
    ChatRequest,
    Finished,
    Message,
    TextDelta,
    ToolCall,
    ToolCallComplete,
    ToolSpec,
    Usage,
    UsageEvent,
)
from providers.core.wrapper import events_of


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    content: str  # the result's text
    is_error: bool = False
    # Images or documents the tool returned, with its text as a TextPart first; empty
    # for a text-only result (see providers.core.content).
    parts: tuple[Part, ...] = ()


class ToolExecutor(Protocol):
    """Server-side tools offered to the model in one turn."""

    def specs(self) -> Sequence[ToolSpec]: ...

    def handles(self, name: str) -> bool: ...

    async def execute(self, call: ToolCall) -> ToolOutcome: ...


@dataclass(frozen=True, slots=True)
class ToolResult:
    call: ToolCall
    outcome: ToolOutcome
    latency_ms: int


@dataclass(frozen=True, slots=True)
class RoundCompleted:
    """One model call finished: what the assistant said and asked for in it."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    finish_reason: str
    provider: str
    model: str
    latency_ms: int
    first_token_ms: int | None


@dataclass(frozen=True, slots=True)
class TurnCompleted:
    """The turn is over: the model answered, asked the client for tools, or hit a limit."""

    usage: Usage
    finish_reason: str
    provider: str
    model: str
    pending_tool_calls: tuple[ToolCall, ...] = ()
    rounds: int = 1
    round_limit_reached: bool = False


LoopEvent = TextDelta | ToolCallComplete | ToolResult | RoundCompleted | TurnCompleted
ChainFactory = Callable[[ChatRequest], ProviderChain]


@dataclass
class TurnOptions:
    # False when nobody relays the stream (sync transports): non-streaming vendor calls.
    streaming: bool = True
    max_rounds: int = 5
    tool_timeout_s: float = 30.0
    max_result_chars: int = 16_000
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    # Telemetry for each model call (None: none; see providers.core.observed).
    observe: CallObserver | None = None


async def run_turn(
    request: ChatRequest,
    *,
    chain_for: ChainFactory,
    executor: ToolExecutor | None = None,
    options: TurnOptions | None = None,
) -> AsyncIterator[LoopEvent]:
    """Run one turn. `chain_for(request)` gives the provider chain (primary + fallbacks);
    each model call runs through it as `Observed(resilient(chain, options.policy))`
    (without `Observed` when `options.observe` is None).

    Provider errors propagate; events already yielded stay delivered, so the caller can
    keep the partial answer.
    """
    options = options or TurnOptions()
    server_specs = tuple(executor.specs()) if executor else ()
    client_names = {spec.name for spec in request.tools}
    offered = request.tools + tuple(s for s in server_specs if s.name not in client_names)
    request = replace(request, tools=offered)
    total = Usage()
    for round_number in range(1, options.max_rounds + 1):
        round_ = None
        # Closed with the turn: a client gone mid-answer ends the model call at once.
        async with aclosing(_one_round(request, chain_for, options)) as events:
            async for event in events:
                if isinstance(event, RoundCompleted):
                    round_ = event
                yield event
        assert round_ is not None
        total = total + round_.usage
        server_calls, client_calls = _split(round_.tool_calls, executor, client_names)
        done = not round_.tool_calls or round_.finish_reason != "tool_calls"
        if done or not server_calls:
            yield _completed(total, round_, round_.finish_reason, client_calls, round_number)
            return
        results = await _run_tools(server_calls, executor, options)  # type: ignore[arg-type]
        for result in results:
            yield result
        if client_calls:
            # The client owns some of the calls: it sends their results in its next message.
            yield _completed(total, round_, "tool_calls", client_calls, round_number)
            return
        request = _with_round(request, round_, results)
    yield TurnCompleted(
        total,
        "tool_calls",
        round_.provider,
        round_.model,
        rounds=options.max_rounds,
        round_limit_reached=True,
    )


def _completed(
    total: Usage,
    round_: RoundCompleted,
    finish_reason: str,
    client_calls: tuple[ToolCall, ...],
    rounds: int,
) -> TurnCompleted:
    return TurnCompleted(total, finish_reason, round_.provider, round_.model, client_calls, rounds)


def _with_round(
    request: ChatRequest, round_: RoundCompleted, results: Sequence[ToolResult]
) -> ChatRequest:
    """The request for the next round: the assistant's tool calls and their results."""
    return replace(
        request,
        messages=(
            *request.messages,
            Message("assistant", round_.text, tool_calls=round_.tool_calls),
            *(
                Message(
                    "tool",
                    r.outcome.content,
                    tool_call_id=r.call.id,
                    name=r.call.name,
                    parts=r.outcome.parts,
                )
                for r in results
            ),
        ),
    )


async def _one_round(
    request: ChatRequest, chain_for: ChainFactory, options: TurnOptions
) -> AsyncIterator[LoopEvent]:
    started = time.perf_counter()
    first_token_ms: int | None = None
    parts: list[str] = []
    calls: list[ToolCall] = []
    usage = Usage()
    finish = "stop"
    provider = resilient(chain_for(request), options.policy)
    if options.observe is not None:
        provider = Observed(provider, options.observe)
    streaming = options.streaming
    answered_by, answered_model = provider.name, provider.model_for(request)
    async with aclosing(events_of(provider, request, streaming=streaming)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                if first_token_ms is None:
                    first_token_ms = _ms_since(started)
                parts.append(event.text)
                yield event
            elif isinstance(event, ToolCallComplete):
                if first_token_ms is None:
                    first_token_ms = _ms_since(started)
                calls.append(event.call)
                yield event
            elif isinstance(event, UsageEvent):
                usage = event.usage
            elif isinstance(event, Finished):
                finish = event.reason
            elif isinstance(event, AttemptStarted):
                answered_by, answered_model = event.provider, event.model
    yield RoundCompleted(
        "".join(parts),
        tuple(calls),
        usage,
        finish,
        answered_by,
        answered_model,
        _ms_since(started),
        first_token_ms,
    )


def _split(
    calls: tuple[ToolCall, ...], executor: ToolExecutor | None, client_names: set[str]
) -> tuple[list[ToolCall], tuple[ToolCall, ...]]:
    # A tool the client declared itself is the client's, even if the server has one too.
    server = [
        c for c in calls if executor and c.name not in client_names and executor.handles(c.name)
    ]
    client = tuple(c for c in calls if c not in server)
    return server, client


async def _run_tools(
    calls: list[ToolCall], executor: ToolExecutor, options: TurnOptions
) -> list[ToolResult]:
    """Run the calls concurrently; a failing or slow tool becomes an error result."""

    async def one(call: ToolCall) -> ToolResult:
        started = time.perf_counter()
        try:
            outcome = await asyncio.wait_for(executor.execute(call), options.tool_timeout_s)
        except TimeoutError:
            outcome = ToolOutcome(
                f"Tool '{call.name}' timed out after {options.tool_timeout_s}s", True
            )
        except ProviderError:
            raise
        except Exception as exc:
            outcome = ToolOutcome(f"Tool '{call.name}' failed: {type(exc).__name__}", True)
        if len(outcome.content) > options.max_result_chars:
            cut = outcome.content[: options.max_result_chars] + "\n[result truncated]"
            # The images and documents stay; the text part becomes the cut text.
            binaries = tuple(p for p in outcome.parts if not isinstance(p, TextPart))
            parts = (TextPart(cut), *binaries) if binaries else ()
            outcome = ToolOutcome(cut, outcome.is_error, parts)
        return ToolResult(call, outcome, _ms_since(started))

    return list(await asyncio.gather(*(one(call) for call in calls)))


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
