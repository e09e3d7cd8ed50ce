"""One chat turn, as one sequence of events that every transport formats.

`prepare_turn` validates and persists what the client sent (the user message, or the
results of tools the client ran) and builds the provider request; `turn_events` runs
the model and the tool loop, persists the assistant and tool messages as they happen,
fans every event out to the chat's WebSocket group, and always ends with exactly one
`message.completed` or `error`. The assistant message is written as `streaming` first
and finished in a `finally:`, so a client that disconnects leaves the partial text
marked `interrupted`, and a provider failure leaves it marked `error` with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError

from chats import fanout, history, leases, services
from chats.models import Chat, Message
from chats.serializers import MessageSerializer
from llmwrapper import db
from llmwrapper.db import DB_ERRORS
from llmwrapper.errors import ValidationFailedError, database_unavailable
from providers import gateway, wire
from providers import services as provider_services
from providers.errors import ProviderError
from providers.loop import RoundCompleted, ToolResult, TurnCompleted, run_turn
from providers.tooling import tool_specs_from_openai
from providers.types import ChatRequest, TextDelta, ToolCallComplete, ToolSpec
from tenants import limits
from tenants.models import ApiKey

logger = logging.getLogger(__name__)

# After a partial save failed (the database is away), the stream skips saves this long
# rather than wait on the pool at every interval.
_PARTIAL_SAVE_BACKOFF = 30.0


@dataclass
class SendInput:
    content: str | None = None
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    include_memories: bool = False
    memory_keys: list[str] | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: Any = None
    server_tools: bool | list[str] | None = None
    provider: str | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    fallbacks: list[str] | None = None

    @classmethod
    def from_validated(cls, data: dict[str, Any]) -> SendInput:
        server_tools = data.get("server_tools")
        return cls(
            content=data.get("content"),
            tool_results=list(data.get("tool_results") or []),
            include_memories=data.get("include_memories", False),
            memory_keys=data.get("memory_keys"),
            tools=tool_specs_from_openai(data.get("tools"), data.get("functions")),
            tool_choice=data.get("tool_choice"),
            server_tools=None if server_tools is True else server_tools,
            provider=data.get("provider"),
            model=data.get("model"),
            params={k: data[k] for k in wire.PARAM_NAMES if k in data},
            fallbacks=data.get("fallbacks"),
        )


class ErrorBody(dict):
    """An `error` event's body; `status` and `headers` are what a sync send answers with."""

    def __init__(
        self, body: dict[str, Any], status: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(body)
        self.status = status
        self.headers = headers or {}


@dataclass
class Turn:
    chat: Chat
    user_messages: list[Message]
    request: ChatRequest
    target: gateway.Target
    fallbacks: list[gateway.Target]
    executor: Any
    context: provider_services.CallContext
    # The assistant message of the first round, written `streaming` together with the
    # user's message, so no user message is ever stored without its answer.
    placeholder: Message | None = None


def serialize(message: Message) -> dict[str, Any]:
    return MessageSerializer(message).data


def _pending_tool_calls(chat: Chat) -> dict[str, dict]:
    """Tool calls of the newest assistant message that have no result yet, by id."""
    last_call = (
        Message.objects.filter(chat=chat, role="assistant")
        .exclude(tool_calls=[])
        .order_by("-sequence")
        .first()
    )
    if last_call is None:
        return {}
    answered = set(
        Message.objects.filter(chat=chat, role="tool", sequence__gt=last_call.sequence).values_list(
            "tool_call_id", flat=True
        )
    )
    return {c["id"]: c for c in last_call.tool_calls if c["id"] not in answered}


def _incoming_messages(chat: Chat, send: SendInput) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if send.tool_results:
        pending = _pending_tool_calls(chat)
        for index, result in enumerate(send.tool_results):
            call = pending.pop(result["tool_call_id"], None)
            if call is None:
                raise ValidationFailedError(
                    "Invalid request: see details.",
                    details={
                        "tool_results": {
                            str(index): ["No pending tool call with this tool_call_id."]
                        }
                    },
                )
            rows.append(
                {
                    "role": Message.Role.TOOL,
                    "content": result["content"],
                    "tool_call_id": call["id"],
                    "name": call["name"],
                    "metadata": {"is_error": bool(result.get("is_error")), "source": "client"},
                }
            )
    if send.content:
        rows.append({"role": Message.Role.USER, "content": send.content})
    return rows


def _streaming_assistant(target: gateway.Target) -> dict[str, Any]:
    """The row of an assistant message about to be streamed from `target`."""
    return {
        "role": Message.Role.ASSISTANT,
        "status": Message.Status.STREAMING,
        "provider": target.provider,
        "model": target.model,
    }


def _prepare(chat: Chat, key: ApiKey, send: SendInput) -> Turn:
    limits.check_tokens(chat.subtenant)
    # Resolve and check the provider before anything is written, so a bad provider or
    # a missing key is a plain 400 with nothing half-stored.
    target = gateway.resolve_target(
        [
            (send.provider, send.model),
            (chat.provider, chat.model),
            (chat.subtenant.default_provider, chat.subtenant.default_model),
        ]
    )
    gateway.registry().get(target.provider)
    fallbacks = (
        gateway.parse_targets(send.fallbacks)
        if send.fallbacks is not None
        else gateway.default_fallbacks()
    )
    incoming = _incoming_messages(chat, send)
    system = history.system_context(
        chat=chat, include_memories=send.include_memories, memory_keys=send.memory_keys
    )
    placeholder = _streaming_assistant(target)
    # History is read before anything is written: the append is the turn's last step
    # before the model, so a failure here leaves nothing half-stored.
    recent = history.load_recent(chat=chat)
    *user_messages, assistant = services.messages_append(
        chat=chat, messages=[*incoming, placeholder]
    )
    recent = [*recent, *user_messages][-settings.CHAT_HISTORY_MAX_MESSAGES :]
    request = ChatRequest(
        model=target.model,
        messages=history.build_messages(chat=chat, recent=recent, system=system),
        tools=send.tools,
        tool_choice=send.tool_choice,
        params=wire.params_from(send.params, chat.params),
    )
    context = provider_services.CallContext(
        subtenant=chat.subtenant, api_key=key, source="chat", chat_id=chat.id
    )
    return Turn(chat, user_messages, request, target, fallbacks, None, context, assistant)


async def prepare_turn(*, chat: Chat, key: ApiKey, send: SendInput) -> Turn:
    turn = await db.run(_prepare, chat, key, send)
    try:
        turn.executor = await provider_services.tool_executor(
            subtenant=chat.subtenant, selection=send.server_tools
        )
        await sync_to_async(db.release)()  # no connection is held while the model answers
    except BaseException:
        if turn.placeholder is not None:
            await db.run(
                services.message_update,
                message=turn.placeholder,
                status=Message.Status.ERROR,
                error="The turn could not start.",
            )
        raise
    return turn


class _Progress:
    """What the turn has persisted so far, so `finally:` can close it properly."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.placeholder = turn.placeholder
        self.current: Message | None = None
        self.parts: list[str] = []
        self.created: list[Message] = []
        self.saved_at = time.monotonic()

    async def open_assistant(self) -> Message:
        if self.placeholder is not None:
            message, self.placeholder = self.placeholder, None
        else:
            target = self.turn.target
            [message] = await db.run(
                services.messages_append,
                chat=self.turn.chat,
                messages=[_streaming_assistant(target)],
            )
        leases.hold(messages=(message.id,))
        self.current, self.parts = message, []
        self.created.append(message)
        self.saved_at = time.monotonic()
        return message

    async def add_text(self, text: str) -> None:
        """Collect a delta; every CHAT_PARTIAL_SAVE_SECONDS the text so far is saved."""
        self.parts.append(text)
        every = settings.CHAT_PARTIAL_SAVE_SECONDS
        if self.current is not None and every and time.monotonic() - self.saved_at >= every:
            self.saved_at = time.monotonic()
            try:
                await db.run(
                    services.message_update,
                    message=self.current,
                    content="".join(self.parts),
                    status=Message.Status.STREAMING,
                )
            except DatabaseError:  # the stream goes on; the final write saves it all
                logger.warning("Could not save a stream's partial text", exc_info=True)
                self.saved_at = time.monotonic() + _PARTIAL_SAVE_BACKOFF

    async def close_assistant(self, round_: RoundCompleted) -> Message:
        assert self.current is not None
        message = await db.run(
            services.message_update,
            retry_for=settings.DATABASE_RETRY_SECONDS,
            message=self.current,
            content=round_.text,
            tool_calls=[wire.tool_call_to_api(c) for c in round_.tool_calls],
            provider=round_.provider,
            model=round_.model,
            input_tokens=round_.usage.input_tokens,
            output_tokens=round_.usage.output_tokens,
            finish_reason=round_.finish_reason,
            latency_ms=round_.latency_ms,
            status=Message.Status.COMPLETE,
        )
        leases.release(messages=(message.id,))
        self.current = None
        return message

    async def add_tool_result(self, result: ToolResult) -> Message:
        [message] = await db.run(
            services.messages_append,
            chat=self.turn.chat,
            messages=[
                {
                    "role": Message.Role.TOOL,
                    "content": result.outcome.content,
                    "tool_call_id": result.call.id,
                    "name": result.call.name,
                    "latency_ms": result.latency_ms,
                    "metadata": {"is_error": result.outcome.is_error, "source": "server"},
                }
            ],
        )
        self.created.append(message)
        return message

    async def abandon(self, status: str, error: str = "") -> None:
        """Keep the partial answer of a round that did not finish."""
        if self.current is None:
            return
        message, self.current = self.current, None
        try:
            await asyncio.shield(
                db.run(
                    services.message_update,
                    retry_for=settings.DATABASE_RETRY_SECONDS,
                    message=message,
                    content="".join(self.parts),
                    status=status,
                    error=error,
                )
            )
        finally:
            # Also when the write failed: the lease then lapses and a sweeper ends it.
            leases.release(messages=(message.id,))


async def turn_events(
    turn: Turn, *, origin: str | None = None, streaming: bool = True
) -> AsyncIterator[tuple[str, dict]]:
    """The events of one turn (see the module docstring); `origin` tags fan-out."""
    progress = _Progress(turn)
    chat_id = turn.chat.id

    async def emit(name: str, data: dict) -> tuple[str, dict]:
        await fanout.publish(chat_id, name, data, origin=origin)
        return name, data

    status, error_text = Message.Status.INTERRUPTED, ""
    failure: ProviderError | None = None
    started = time.perf_counter()
    try:
        assistant = await progress.open_assistant()
        yield await emit(
            "message.created",
            {
                "chat_id": str(chat_id),
                "input_messages": [serialize(m) for m in turn.user_messages],
                "message": serialize(assistant),
            },
        )
        completed: TurnCompleted | None = None
        events = run_turn(
            turn.request,
            chain_for=gateway.chain_factory(turn.target, turn.fallbacks),
            executor=turn.executor,
            options=gateway.turn_options(streaming=streaming),
        )
        async with aclosing(events):
            async for event in events:
                if progress.current is None and isinstance(
                    event, TextDelta | ToolCallComplete | RoundCompleted
                ):
                    assistant = await progress.open_assistant()
                    yield await emit(
                        "message.created",
                        {"chat_id": str(chat_id), "message": serialize(assistant)},
                    )
                if isinstance(event, TextDelta):
                    await progress.add_text(event.text)
                    yield await emit("delta", {"message_id": str(assistant.id), "text": event.text})
                elif isinstance(event, ToolCallComplete):
                    yield await emit(
                        "tool_call",
                        {"message_id": str(assistant.id), **wire.tool_call_to_api(event.call)},
                    )
                elif isinstance(event, RoundCompleted):
                    turn.context.add_round(event)
                    assistant = await progress.close_assistant(event)
                elif isinstance(event, ToolResult):
                    message = await progress.add_tool_result(event)
                    yield await emit(
                        "tool_result",
                        {"message_id": str(message.id), **wire.tool_result_to_api(event)},
                    )
                elif isinstance(event, TurnCompleted):
                    completed = event
        assert completed is not None
        status = Message.Status.COMPLETE
        yield await emit("message.completed", _completion(turn, progress, assistant, completed))
    except ProviderError as exc:
        status, error_text, failure = Message.Status.ERROR, exc.message, exc
        body = _with_message(exc.to_dict(), progress)
        yield await emit("error", ErrorBody(body, exc.status, exc.headers))
    except DB_ERRORS as exc:
        status, error_text = Message.Status.ERROR, "The database was unavailable."
        body, code, headers = database_unavailable(exc)
        yield await emit("error", ErrorBody(_with_message(body["error"], progress), code, headers))
    except Exception:
        logger.exception("chat turn failed")
        status, error_text = Message.Status.ERROR, "Internal error"
        body = {"type": "internal_error", "message": "Internal server error.", "details": {}}
        yield await emit("error", ErrorBody(_with_message(body, progress), 500))
    finally:
        await progress.abandon(status, error_text)
        if status != Message.Status.COMPLETE:
            # The unfinished round is recorded too: its time (and, for an error, the
            # upstream status) belongs in usage reports.
            turn.context.add_failure(
                turn.target,
                status=str(status),
                error=failure,
                latency_ms=int((time.perf_counter() - started) * 1000),
            )
        await turn.context.flush()


def _with_message(error: dict, progress: _Progress) -> dict:
    if progress.current is not None:
        error["details"] = {**(error.get("details") or {}), "message_id": str(progress.current.id)}
    return error


def _completion(
    turn: Turn, progress: _Progress, final: Message, completed: TurnCompleted
) -> dict[str, Any]:
    return {
        "chat_id": str(turn.chat.id),
        "message": serialize(final),
        "messages": [
            serialize(m) for m in progress.created if m.status != Message.Status.STREAMING
        ],
        "input_messages": [serialize(m) for m in turn.user_messages],
        "usage": wire.usage_to_api(completed.usage),
        "finish_reason": completed.finish_reason,
        "provider": completed.provider,
        "model": completed.model,
        "tool_calls": [wire.tool_call_to_api(c) for c in completed.pending_tool_calls],
        "round_limit_reached": completed.round_limit_reached,
    }
