"""The flow shared by the fake vendors: routing, auth, scripted failures, streaming."""

from __future__ import annotations

import abc
import asyncio
import json
from dataclasses import dataclass
from typing import Any

from providers.testing._server import FakeServer, RecordedRequest, Response, Script

CREATED = 1_700_000_000


@dataclass
class Reply:
    text: str
    tool_calls: list[tuple[str, str, dict]]  # (id, name, arguments)
    input_tokens: int
    output_tokens: int
    model: str


@dataclass
class Frame:
    data: bytes
    content: bool = False  # counts for cut_after_chunks
    final: bool = False  # dropped by end_without_finish


class ChatFake(FakeServer, abc.ABC):
    """Shared flow: route, auth, scripted errors and delays, then the vendor's answer."""

    chat_path = ""
    models_path = ""
    stream_content_type = "text/event-stream"
    tool_id_prefix = "call_"
    default_chunks = 3

    def is_chat_route(self, path: str) -> bool:
        return path == self.chat_path

    def is_authorized(self, request: RecordedRequest) -> bool:
        if self.api_key is None:
            return True
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    async def handle(self, request: RecordedRequest, response: Response) -> None:
        if request.method == "GET" and request.path == self.models_path:
            response.send_json(200, self.models_payload())
            return
        if request.method != "POST" or not self.is_chat_route(request.path):
            self.send_error(response, 404, f"Unknown route {request.method} {request.path}")
            return
        script = await self.scripted(request, response)
        if script is None:
            return
        body = request.body if isinstance(request.body, dict) else {}
        problem = self.validate(body)
        if problem:
            self.send_error(response, 400, problem)
            return
        reply = self.plan(body, script)
        if self.wants_stream(body):
            await self.write_stream(response, self.stream_frames(body, reply, script), script)
        elif script.drip:
            await response.send_dripped(200, self.full_payload(body, reply, script), script.drip)
        else:
            response.send_json(200, self.full_payload(body, reply, script))

    async def scripted(self, request: RecordedRequest, response: Response) -> Script | None:
        """The next scripted answer once the caller is authorized and the script's
        delay waited; None when the answer was already sent (401, or a scripted error)."""
        if not self.is_authorized(request):
            self.send_error(response, 401, "Invalid API key")
            return None
        script = self.next_script() or Script()
        if script.delay:
            await asyncio.sleep(script.delay)
        if script.status >= 400:
            headers = {}
            if script.retry_after is not None:
                headers["retry-after"] = f"{script.retry_after:g}"
            message = script.error_message or f"Scripted error {script.status}"
            self.send_error(response, script.status, message, script.error_type, headers)
            return None
        return script

    def plan(self, body: dict, script: Script) -> Reply:
        messages = body.get("messages") or []
        text = script.text
        if text is None:
            text = "" if script.tool_calls else f"echo: {last_user_text(messages)}"
        calls = [
            (call.get("id") or f"{self.tool_id_prefix}{i}", call["name"], call.get("arguments", {}))
            for i, call in enumerate(script.tool_calls or [])
        ]
        if script.usage is not None:
            input_tokens, output_tokens = script.usage
        else:
            input_tokens = content_words(messages) + self.words(self.system_text(body))
            output_tokens = self.words(text) + len(calls)
        return Reply(text, calls, input_tokens, output_tokens, body.get("model") or "")

    def chunks_of(self, reply: Reply, script: Script) -> list[str]:
        return split_text(reply.text, script.chunks or self.default_chunks)

    async def write_stream(self, response: Response, frames: list[Frame], script: Script) -> None:
        response.start_stream(self.stream_content_type)
        if script.end_without_finish:
            frames = [f for f in frames if not f.final]
        sent_content = 0
        for frame in frames:
            cut = script.cut_after_chunks
            if cut is not None and sent_content >= cut and (frame.content or frame.final):
                await response.cut()
                return
            fail = script.error_after_chunks
            if fail is not None and sent_content >= fail and (frame.content or frame.final):
                message = script.error_message or "Overloaded"
                await response.send_chunk(self.stream_error(message, script.error_type))
                response.end_stream()
                return
            if script.chunk_delay:
                await asyncio.sleep(script.chunk_delay)
            if script.drip and sent_content >= script.drip_after_chunks:
                await response.drip_chunks(frame.data, script.drip)
            else:
                await response.send_chunk(frame.data)
            sent_content += frame.content
        response.end_stream()

    # Vendor specifics -------------------------------------------------------------

    def system_text(self, body: dict) -> str:
        return ""

    def validate(self, body: dict) -> str | None:
        return None if body.get("messages") else "messages: field required"

    def wants_stream(self, body: dict) -> bool:
        return bool(body.get("stream"))

    @abc.abstractmethod
    def send_error(
        self,
        response: Response,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Each vendor fake implements this in its own wire format."""

    @abc.abstractmethod
    def models_payload(self) -> dict:
        """Each vendor fake implements this in its own wire format."""

    @abc.abstractmethod
    def stream_error(self, message: str, error_type: str | None) -> bytes:
        """Each vendor fake implements this in its own wire format."""

    @abc.abstractmethod
    def stream_frames(self, body: dict, reply: Reply, script: Script) -> list[Frame]:
        """Each vendor fake implements this in its own wire format."""

    @abc.abstractmethod
    def full_payload(self, body: dict, reply: Reply, script: Script) -> dict:
        """Each vendor fake implements this in its own wire format."""


def sse(payload: dict | str, event: str | None = None) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {data}\n\n".encode()


def halves(text: str) -> list[str]:
    # Split argument JSON in two so clients must join fragments, as with real vendors.
    return split_text(text, 2) if len(text) > 1 else [text]


def split_text(text: str, pieces: int) -> list[str]:
    """Split into `pieces` non-empty parts that join back to `text`."""
    pieces = max(1, min(pieces, len(text)))
    if pieces <= 1:
        return [text] if text else []
    size, extra = divmod(len(text), pieces)
    out, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def last_user_text(messages: Any) -> str:
    """The text of the last user message, whatever the vendor's content shape."""
    for message in reversed(messages or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [b.get("text", "") for b in content if isinstance(b, dict)]
            return " ".join(t for t in texts if t)
    return ""


def content_words(messages: Any) -> int:
    total = 0
    for message in messages or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content.split())
        elif isinstance(content, list):
            for block in content:
                if isinstance(block, dict):
                    value = block.get("text") or block.get("content") or ""
                    total += len(value.split()) if isinstance(value, str) else 0
    return total
