"""A turn as an Anthropic `message`, or its stream of events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pipeline
from llmwrapper.sse import encode
from providers.core import wire
from providers.core.loop import TurnCompleted
from providers.core.types import ToolCall
from surfaces import compat
from surfaces.anthropic.errors import anthropic_error

# Seconds a stream may stay silent before a `ping` event (Anthropic sends them too).
PING_SECONDS = 15.0


_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def _stop_reason(turn: TurnCompleted) -> str:
    # Which stop sequence matched is not known past the adapters: "stop" is end_turn.
    # A tool loop that ran out of rounds has no call left for the client.
    if turn.finish_reason == "tool_calls" and not turn.pending_tool_calls:
        return "end_turn"
    return _STOP_REASONS.get(turn.finish_reason, "end_turn")


def _usage(turn: TurnCompleted) -> dict[str, int]:
    return {"input_tokens": turn.usage.input_tokens, "output_tokens": turn.usage.output_tokens}


def _tool_use(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}


def _event(kind: str, **payload: Any) -> bytes:
    return encode(kind, {"type": kind, **payload})


class Reply:
    """One turn in the Messages format: a `message`, or its stream of events."""

    def __init__(self, requested_model: str, turn: pipeline.Turn) -> None:
        self.requested_model = requested_model
        self.turn = turn
        self.id = f"msg_{uuid.uuid4().hex}"
        self._opened: pipeline.OpenedStream | None = None
        self._blocks = 0  # content blocks started
        self._text_open = False

    def message(self, content: list[dict], stop: str | None, usage: dict) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.requested_model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }

    async def body(self) -> dict[str, Any]:
        done = await compat.completed(self.turn)
        calls = done.turn.pending_tool_calls
        content = [{"type": "text", "text": done.text}] if done.text or not calls else []
        content += [_tool_use(call) for call in calls]
        return self.message(content, _stop_reason(done.turn), _usage(done.turn))

    async def open_stream(self) -> None:
        """Start the turn and wait for the model's first event: a failure before any
        output is raised from here, as a plain HTTP error."""
        self._opened = await pipeline.OpenedStream.open(self.turn)

    async def events(self) -> AsyncIterator[bytes]:
        """The stream's events, after `open_stream`: `message_start`, content blocks,
        `message_delta` with the stop reason and usage, `message_stop`; `ping` while
        the model is silent; an `error` event if the turn fails midway."""
        assert self._opened is not None
        yield _event("message_start", message=self.message([], None, _NO_USAGE))
        yield _event("ping")
        events = compat.with_keepalives(self._opened.events(), PING_SECONDS)
        async with aclosing(events):
            async for event in events:
                if event is None:
                    yield _event("ping")
                elif isinstance(event, pipeline.Delta):
                    if not self._text_open:
                        yield self._start({"type": "text", "text": ""})
                        self._text_open = True
                    delta = {"type": "text_delta", "text": event.text}
                    yield _event("content_block_delta", index=self._blocks - 1, delta=delta)
                elif isinstance(event, pipeline.ToolCalled) and not event.server_side:
                    for chunk in self._tool_call(event.call):
                        yield chunk
                elif isinstance(event, pipeline.Completed):
                    if not self._blocks:
                        yield self._start({"type": "text", "text": ""})
                        self._text_open = True
                    for chunk in self._close_text():
                        yield chunk
                    delta = {"stop_reason": _stop_reason(event.turn), "stop_sequence": None}
                    yield _event("message_delta", delta=delta, usage=_usage(event.turn))
                    yield _event("message_stop")
                elif isinstance(event, pipeline.Failed):
                    yield _event("error", error=anthropic_error(event.error.exc).body()["error"])
                    return

    def _start(self, block: dict[str, Any]) -> bytes:
        self._blocks += 1
        return _event("content_block_start", index=self._blocks - 1, content_block=block)

    def _close_text(self) -> list[bytes]:
        if not self._text_open:
            return []
        self._text_open = False
        return [_event("content_block_stop", index=self._blocks - 1)]

    def _tool_call(self, call: ToolCall) -> list[bytes]:
        chunks = self._close_text()
        chunks.append(self._start({**_tool_use(call), "input": {}}))
        index = self._blocks - 1
        delta = {"type": "input_json_delta", "partial_json": wire.dumps_arguments(call.arguments)}
        chunks.append(_event("content_block_delta", index=index, delta=delta))
        chunks.append(_event("content_block_stop", index=index))
        return chunks


_NO_USAGE = {"input_tokens": 0, "output_tokens": 0}
