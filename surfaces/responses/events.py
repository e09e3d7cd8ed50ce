"""A turn as the Responses API streams it: `response.created`, then output items
(`response.output_item.added`, text or function-call argument deltas,
`response.output_item.done`), then `response.completed` or `response.failed`, each
event numbered with `sequence_number` as the SDK's stream helper expects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pipeline
from llmwrapper.sse import encode
from providers.core.types import ToolCall
from surfaces.openai_chat import openai_error
from surfaces.responses import wire


class ResponseStream:
    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response  # the in_progress response object
        self.output: list[dict[str, Any]] = []
        self._sequence = 0
        self._text: dict[str, Any] | None = None  # the message item receiving text
        self._text_of: object = None  # the stored message it belongs to
        self._parts: list[str] = []

    async def events(self, opened: pipeline.OpenedStream) -> AsyncIterator[bytes]:
        yield self._event("response.created", response=self.response)
        yield self._event("response.in_progress", response=self.response)
        async with aclosing(opened.events()) as events:
            async for event in events:
                if isinstance(event, pipeline.Delta):
                    for chunk in self._delta(event.text, event.message):
                        yield chunk
                elif isinstance(event, pipeline.ToolCalled) and not event.server_side:
                    for chunk in self._function_call(event.call):
                        yield chunk
                elif isinstance(event, pipeline.Completed):
                    for chunk in self._close_text():
                        yield chunk
                    done = wire.finished(self.response, event.turn, self.output)
                    kind = (
                        "response.completed"
                        if done["status"] == "completed"
                        else "response.incomplete"
                    )
                    yield self._event(kind, response=done)
                elif isinstance(event, pipeline.Failed):
                    for chunk in self._close_text():
                        yield chunk
                    error = openai_error(event.error.exc)  # type: ignore[arg-type]
                    failed = {
                        **self.response,
                        "status": "failed",
                        "output": self.output,
                        "error": {"code": error.code or error.type, "message": error.message},
                    }
                    yield self._event("response.failed", response=failed)
                    return

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return encode(kind, payload)

    def _delta(self, text: str, message: object) -> list[bytes]:
        chunks: list[bytes] = []
        if self._text is not None and message is not self._text_of:
            chunks += self._close_text()  # a new round of the tool loop: a new message
        if self._text is None:
            self._text, self._text_of, self._parts = self._open_message(message), message, []
            index = len(self.output)
            self.output.append(self._text)
            chunks.append(
                self._event(
                    "response.output_item.added",
                    output_index=index,
                    item=wire.message_item(self._text["id"], "", status="in_progress"),
                )
            )
            chunks.append(
                self._event(
                    "response.content_part.added",
                    item_id=self._text["id"],
                    output_index=index,
                    content_index=0,
                    part=wire.output_text(""),
                )
            )
        self._parts.append(text)
        chunks.append(
            self._event(
                "response.output_text.delta",
                item_id=self._text["id"],
                output_index=len(self.output) - 1,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return chunks

    def _open_message(self, message: object) -> dict[str, Any]:
        item_id = wire.message_item_id(message)
        return wire.message_item(item_id, "", status="in_progress")

    def _close_text(self) -> list[bytes]:
        if self._text is None:
            return []
        text = "".join(self._parts)
        index = self.output.index(self._text)
        item = wire.message_item(self._text["id"], text)
        self.output[index] = item
        item_id, self._text = item["id"], None
        common = {"item_id": item_id, "output_index": index, "content_index": 0}
        return [
            self._event("response.output_text.done", **common, text=text, logprobs=[]),
            self._event("response.content_part.done", **common, part=wire.output_text(text)),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _function_call(self, call: ToolCall) -> list[bytes]:
        chunks = self._close_text()
        item = wire.function_call_item(wire.call_item_id(call), call)
        index = len(self.output)
        self.output.append(item)
        common = {"item_id": item["id"], "output_index": index}
        chunks += [
            self._event(
                "response.output_item.added",
                output_index=index,
                item=wire.function_call_item(item["id"], call, status="in_progress"),
            ),
            self._event(
                "response.function_call_arguments.delta", **common, delta=item["arguments"]
            ),
            self._event(
                "response.function_call_arguments.done",
                **common,
                name=call.name,
                arguments=item["arguments"],
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]
        return chunks
