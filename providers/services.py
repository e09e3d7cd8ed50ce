"""Direct LLM calls (outside chats), and the call records every path writes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async

from providers import gateway, wire
from providers import records as call_records
from providers.errors import ProviderError
from providers.loop import RoundCompleted, ToolExecutor, ToolResult, TurnCompleted, run_turn
from providers.models import LlmCall
from providers.types import ChatRequest, TextDelta, ToolCallComplete
from tenants import limits
from tenants.models import ApiKey, Subtenant

logger = logging.getLogger(__name__)

# Server-side tools are provided by the tools app, which registers a factory here
# (providers may not import tools). Selection: None = all, False = none, [names] = those.
ExecutorFactory = Callable[..., Awaitable[ToolExecutor | None]]
_executor_factory: ExecutorFactory | None = None


def register_tool_executor(factory: ExecutorFactory) -> None:
    global _executor_factory
    _executor_factory = factory


async def tool_executor(
    *, subtenant: Subtenant, selection: bool | list[str] | None
) -> ToolExecutor | None:
    if _executor_factory is None or selection is False:
        return None
    return await _executor_factory(subtenant=subtenant, selection=selection)


@dataclass
class CallContext:
    """Who the calls are for, so each provider round can be recorded."""

    subtenant: Subtenant
    api_key: ApiKey | None
    source: str
    chat_id: uuid.UUID | None = None
    records: list[LlmCall] = field(default_factory=list)

    def add_round(self, round_: RoundCompleted) -> None:
        self.records.append(
            self._record(
                provider=round_.provider,
                model=round_.model,
                status=LlmCall.Status.OK,
                input_tokens=round_.usage.input_tokens,
                output_tokens=round_.usage.output_tokens,
                latency_ms=round_.latency_ms,
                first_token_ms=round_.first_token_ms,
            )
        )

    def add_failure(
        self, target: gateway.Target, *, status: str, error: ProviderError | None, latency_ms: int
    ) -> None:
        self.records.append(
            self._record(
                provider=error.provider if error else target.provider,
                model=target.model,
                status=status,
                error_type=error.type if error else "",
                upstream_status=error.upstream_status if error else None,
                latency_ms=latency_ms,
            )
        )

    def _record(self, **fields: Any) -> LlmCall:
        return LlmCall(
            subtenant=self.subtenant,
            api_key=self.api_key,
            source=self.source,
            chat_id=self.chat_id,
            **fields,
        )

    async def flush(self) -> None:
        """Hand the records to the background writer (or write them now, shielded so a
        client disconnect cannot lose them); their tokens count against the limits."""
        records, self.records = self.records, []
        if not records:
            return
        if call_records.in_background():
            call_records.writer().submit(records)
        else:
            await asyncio.shield(sync_to_async(call_records.store)(records))


async def ensure_llm_allowed(subtenant: Subtenant) -> None:
    """Raise 429 when the subtenant's tokens per minute or its budget are used up."""
    if limits.token_checks_needed(subtenant):
        await sync_to_async(limits.check_tokens)(subtenant)


@dataclass
class DirectCall:
    context: CallContext
    request: ChatRequest
    target: gateway.Target
    fallbacks: list[gateway.Target]
    executor: ToolExecutor | None = None


async def direct_events(
    call: DirectCall, *, raise_errors: bool = False, streaming: bool = True
) -> AsyncIterator[tuple[str, dict]]:
    """The event sequence of one direct call; SSE sends it, the sync view collects it.

    It always ends with exactly one `message.completed` or `error` (unless
    `raise_errors`, where a provider error is raised instead of sent).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    call_id = str(uuid.uuid4())
    yield (
        "message.created",
        {"id": call_id, "provider": call.target.provider, "model": call.target.model},
    )
    parts: list[str] = []
    status = LlmCall.Status.INTERRUPTED
    error: ProviderError | None = None
    try:
        events = run_turn(
            call.request,
            chain_for=gateway.chain_factory(call.target, call.fallbacks),
            executor=call.executor,
            options=gateway.turn_options(streaming=streaming),
        )
        async for event in events:
            if isinstance(event, TextDelta):
                parts.append(event.text)
                yield "delta", {"text": event.text}
            elif isinstance(event, ToolCallComplete):
                yield "tool_call", wire.tool_call_to_api(event.call)
            elif isinstance(event, ToolResult):
                yield "tool_result", wire.tool_result_to_api(event)
            elif isinstance(event, RoundCompleted):
                call.context.add_round(event)
            elif isinstance(event, TurnCompleted):
                status = LlmCall.Status.OK
                body = {
                    "id": call_id,
                    "content": "".join(parts),
                    **wire.completion_to_api(event),
                }
                yield "message.completed", body
    except ProviderError as exc:
        status, error = LlmCall.Status.ERROR, exc
        if raise_errors:
            raise
        yield "error", exc.to_dict()
    finally:
        if status != LlmCall.Status.OK:
            elapsed = int((loop.time() - started) * 1000)
            call.context.add_failure(call.target, status=status, error=error, latency_ms=elapsed)
        await call.context.flush()


async def direct_complete(call: DirectCall) -> dict[str, Any]:
    """Collect the event sequence into one response body (provider errors raise)."""
    tool_calls: list[dict] = []
    tool_results: list[dict] = []
    completed: dict[str, Any] = {}
    async for name, data in direct_events(call, raise_errors=True, streaming=False):
        if name == "tool_call":
            tool_calls.append(data)
        elif name == "tool_result":
            tool_results.append(data)
        elif name == "message.completed":
            completed = data
    return {
        "id": completed["id"],
        "provider": completed["provider"],
        "model": completed["model"],
        "message": {
            "role": "assistant",
            "content": completed["content"],
            "tool_calls": completed["tool_calls"],
        },
        "tool_calls": tool_calls,
        "tool_results": tool_results,
        "finish_reason": completed["finish_reason"],
        "usage": completed["usage"],
        "rounds": completed["rounds"],
    }
