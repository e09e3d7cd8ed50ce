"""One turn, for every surface: `start` checks and prepares it, `Turn.events` runs it.

`start` raises (a 4xx, or 429 for limits) before anything is stored or any model is
called: an unknown or unconfigured provider, used-up tokens or budget, a chat the key
cannot reach, tool results that answer nothing. In a chat it then stores what the
client sent with the assistant's first row (see `chat_store`).

`Turn.events` runs the tool loop and yields the events of `pipeline.events`: `Started`,
then deltas and tool events, then exactly one `Completed` or `Failed`. Whatever ends
the turn (the end, a provider failure, the database going away, the consumer closing
the generator or being cancelled), every model call is recorded and, in a chat, the
unfinished answer is kept with its status (`interrupted` or `error` with the reason).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, replace

from asgiref.sync import sync_to_async
from django.conf import settings

from llmwrapper import db
from llmwrapper.db import DB_ERRORS
from llmwrapper.errors import database_unavailable, error_body
from pipeline import chat_store, content
from pipeline.events import (
    AssistantOpened,
    Completed,
    Delta,
    Event,
    Failed,
    Interrupted,
    Started,
    ToolCalled,
    ToolRan,
    TurnError,
)
from pipeline.records import TurnRecords
from pipeline.spec import ChatSend, TurnSpec
from providers import gateway, routing
from providers.core import wire
from providers.core.errors import ProviderError
from providers.core.loop import RoundCompleted, ToolExecutor, ToolResult, TurnCompleted, run_turn
from providers.core.types import ChatRequest, TextDelta, ToolCallComplete, Usage
from tenants import limits
from tools.executor import executor_for

logger = logging.getLogger(__name__)

INTERRUPTED, ERROR, COMPLETE = "interrupted", "error", "complete"


@dataclass
class Turn:
    spec: TurnSpec
    request: ChatRequest
    target: gateway.Target
    fallbacks: list[gateway.Target]
    executor: ToolExecutor | None
    view: gateway.View | None = None
    progress: chat_store.ChatProgress | None = None

    def server_side(self, name: str) -> bool:
        """Whether the server runs this tool (a tool the client declared is its own)."""
        if self.executor is None or any(t.name == name for t in self.spec.tools):
            return False
        return self.executor.handles(name)

    def interrupted(self) -> Interrupted | None:
        """After the consumer stopped `events` (closed or cancelled it), what the chat
        holds of the turn; None outside a chat or before anything was stored."""
        progress = self.progress
        if progress is None or progress.last is None:
            return None
        usage = Usage()
        for message in progress.created:
            if message.role == "assistant":
                usage = usage + Usage(message.input_tokens or 0, message.output_tokens or 0)
        return Interrupted(progress.last, tuple(progress.created), progress.input_messages, usage)

    async def events(self, *, streaming: bool = True) -> AsyncIterator[Event]:
        """Run the turn (see the module docstring). `streaming=False` when nobody
        relays the stream: the vendor is then called without streaming."""
        progress = self.progress
        records = TurnRecords(
            subtenant=self.spec.subtenant,
            api_key=self.spec.api_key,
            source=self.spec.source,
            chat_id=progress.chat.id if progress else None,
        )
        outcome = _Outcome()
        started = time.perf_counter()
        try:
            async with aclosing(self._run(records, outcome, streaming)) as run:
                async for event in run:
                    yield event
        except Exception as exc:
            yield self._failed(exc, outcome)
        finally:
            if progress:
                await progress.abandon(outcome.status, outcome.reason)
            if outcome.status != COMPLETE:
                elapsed = int((time.perf_counter() - started) * 1000)
                records.failure(
                    self.target, status=outcome.status, error=outcome.failure, latency_ms=elapsed
                )
            await records.flush()

    async def _run(
        self, records: TurnRecords, outcome: _Outcome, streaming: bool
    ) -> AsyncIterator[Event]:
        """The turn's events up to `Completed`; a failure is raised to `events`."""
        progress = self.progress
        parts: list[str] = []
        message = await progress.open_assistant() if progress else None
        inputs = progress.input_messages if progress else ()
        turn_id = str(uuid.uuid4())
        yield Started(turn_id, self.target, inputs, message)
        completed: TurnCompleted | None = None
        loop_events = run_turn(
            self.request,
            chain_for=gateway.chain_factory(
                self.target, self.fallbacks, self.view, self.spec.vendor_fields
            ),
            executor=self.executor,
            options=gateway.turn_options(streaming=streaming),
        )
        async with aclosing(loop_events):
            async for event in loop_events:
                if progress and progress.current is None and _opens_a_round(event):
                    message = await progress.open_assistant()
                    yield AssistantOpened(message)
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    if progress:
                        await progress.add_text(event.text)
                    yield Delta(event.text, message)
                elif isinstance(event, ToolCallComplete):
                    yield ToolCalled(event.call, self.server_side(event.call.name), message)
                elif isinstance(event, RoundCompleted):
                    records.round(event)
                    if progress:
                        message = await progress.close_assistant(event)
                elif isinstance(event, ToolResult):
                    stored = await progress.add_tool_result(event) if progress else None
                    yield ToolRan(event, stored)
                elif isinstance(event, TurnCompleted):
                    completed = event
        assert completed is not None
        outcome.status = COMPLETE
        stored = progress.stored() if progress else ()
        yield Completed(turn_id, completed, "".join(parts), message, stored, inputs)

    def _failed(self, exc: Exception, outcome: _Outcome) -> Failed:
        """The `Failed` event for what ended the turn, noted in `outcome`."""
        unfinished = self.progress.current if self.progress else None
        outcome.status = ERROR
        if isinstance(exc, ProviderError):
            outcome.failure, outcome.reason = exc, exc.message
            error = TurnError(exc, exc.to_dict(), exc.status, dict(exc.headers or {}))
        elif isinstance(exc, DB_ERRORS):
            outcome.reason = "The database was unavailable."
            body, code, headers = database_unavailable(exc)
            error = TurnError(exc, body["error"], code, headers)
        else:
            logger.exception("turn failed")
            outcome.reason = "Internal error"
            body = error_body("internal_error", "Internal server error.")["error"]
            error = TurnError(exc, body, 500)
        return Failed(error, unfinished)


@dataclass
class _Outcome:
    """How a turn ended, for its records and its chat: `interrupted` until it ends
    otherwise."""

    status: str = INTERRUPTED
    failure: ProviderError | None = None
    reason: str = ""


class OpenedStream:
    """A turn's streamed events once the model's first event arrived (`open`): a
    failure before any output is raised by `open`, so a surface answers it as a plain
    HTTP error (429 with Retry-After, 400...) rather than inside a 200 stream."""

    def __init__(self, events: AsyncIterator[Event], first: list[Event]) -> None:
        self._events, self._first = events, first

    @classmethod
    async def open(cls, turn: Turn) -> OpenedStream:
        events = turn.events(streaming=True)
        first: list[Event] = []
        try:
            async for event in events:
                first.append(event)
                if isinstance(event, Failed):
                    raise event.error.exc
                if not isinstance(event, Started):
                    break
        except BaseException:
            await events.aclose()
            raise
        return cls(events, first)

    async def events(self) -> AsyncIterator[Event]:
        """Every event of the turn, the ones `open` awaited first; closing this closes
        the turn (the turn then ends `interrupted`)."""
        for event in self._first:
            yield event
        async with aclosing(self._events):
            async for event in self._events:
                yield event

    async def aclose(self) -> None:
        await self._events.aclose()


def _opens_a_round(event: object) -> bool:
    return isinstance(event, TextDelta | ToolCallComplete | RoundCompleted)


async def start(spec: TurnSpec) -> Turn:
    """Check and prepare a turn (see the module docstring)."""
    view = await gateway.view_for(spec.subtenant)
    target, fallbacks = resolve_targets(spec, view)
    spec, fallbacks = await content.prepare(spec, target, fallbacks, view)
    if limits.token_checks_needed(spec.subtenant, spec.api_key):
        await sync_to_async(limits.check_tokens)(spec.subtenant, spec.api_key)
    executor = None
    if spec.server_tools is not False:
        selection = None if spec.server_tools is True else spec.server_tools
        executor = await executor_for(subtenant=spec.subtenant, selection=selection)
    request = ChatRequest(
        model=target.model,
        messages=spec.messages,
        tools=spec.tools,
        tool_choice=spec.tool_choice,
        params=wire.params_from(spec.params),
    )
    if spec.chat is None:
        return Turn(spec, request, target, fallbacks, executor, view)
    if isinstance(spec.chat, ChatSend):
        opening = await db.run(chat_store.open_send, spec.chat, target)
    else:
        opening = await db.run(
            chat_store.open_exchange,
            spec.chat,
            subtenant=spec.subtenant,
            messages=spec.messages,
            target=target,
        )
    request = replace(
        request,
        messages=opening.messages,
        params=wire.params_from(spec.params, opening.param_defaults),
    )
    progress = chat_store.ChatProgress(opening, target)
    return Turn(spec, request, target, fallbacks, executor, view, progress)


def resolve_targets(
    spec: TurnSpec, view: gateway.View
) -> tuple[gateway.Target, list[gateway.Target]]:
    """The model to call and its fallbacks; an unconfigured provider is a 400 here, a
    route whose deployments all rest a 503."""
    model = spec.model
    if spec.provider is None and model:
        model = settings.MODEL_ALIASES.get(model, model)
    levels: list[tuple[str | None, str | None]] = [(spec.provider, model)]
    if isinstance(spec.chat, ChatSend):
        levels.append((spec.chat.chat.provider, spec.chat.chat.model))
    levels.append((spec.subtenant.default_provider, spec.subtenant.default_model))
    target = gateway.resolve_target(levels, view)
    if target.route is not None:
        routing.check_available(target.route)
    else:
        view.registry.get(target.provider)
    fallbacks = (
        gateway.parse_targets(spec.fallbacks, view)
        if spec.fallbacks is not None
        else gateway.parse_targets(settings.LLM_FALLBACKS, view)
    )
    return target, fallbacks
