"""The fake Anthropic server: the Messages API (JSON, or its named-event SSE stream),
`/v1/models` and `/v1/messages/count_tokens`."""

from __future__ import annotations

import json

from providers.testing._chat import ChatFake, Frame, Reply, content_words, halves, sse
from providers.testing._server import RecordedRequest, Response, Script


class FakeAnthropic(ChatFake):
    """Anthropic Messages API with its named-event stream."""

    vendor = "anthropic"
    default_models = ("claude-haiku-4-5", "claude-sonnet-5")
    chat_path = "/v1/messages"
    models_path = "/v1/models"
    tool_id_prefix = "toolu_"
    count_tokens_path = "/v1/messages/count_tokens"

    _ERROR_TYPES = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
        529: "overloaded_error",
    }

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in super().chat_requests() if r.path != self.count_tokens_path]

    def count_tokens_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == self.count_tokens_path]

    async def handle(self, request: RecordedRequest, response: Response) -> None:
        """`POST /v1/messages/count_tokens` counts as a chat's input usage is counted
        (takes no script); everything else is the shared flow."""
        if request.method != "POST" or request.path != self.count_tokens_path:
            await super().handle(request, response)
            return
        if not self.is_authorized(request):
            self.send_error(response, 401, "Invalid API key")
            return
        body = request.body if isinstance(request.body, dict) else {}
        for required in ("model", "messages"):
            if not body.get(required):
                self.send_error(response, 400, f"{required}: Field required")
                return
        tokens = content_words(body["messages"]) + self.words(self.system_text(body))
        response.send_json(200, {"input_tokens": tokens})

    def is_authorized(self, request: RecordedRequest) -> bool:
        # The SDK sends the key as a Bearer token; raw HTTP clients use x-api-key.
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        sent = request.headers.get("x-api-key") or bearer
        return bool(sent) and (self.api_key is None or sent == self.api_key)

    def send_error(
        self,
        response: Response,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        kind = error_type or self._ERROR_TYPES.get(status, "api_error")
        payload = {"type": "error", "error": {"type": kind, "message": message}}
        response.send_json(status, payload, {"request-id": "req_fake", **(headers or {})})

    def stream_error(self, message: str, error_type: str | None) -> bytes:
        error = {"type": error_type or "overloaded_error", "message": message}
        return sse({"type": "error", "error": error}, "error")

    def models_payload(self) -> dict:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in self.models
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": self.models[0] if self.models else None,
            "last_id": self.models[-1] if self.models else None,
        }

    def system_text(self, body: dict) -> str:
        system = body.get("system") or ""
        if isinstance(system, list):
            return " ".join(b.get("text", "") for b in system if isinstance(b, dict))
        return system

    def validate(self, body: dict) -> str | None:
        if "max_tokens" not in body:
            return "max_tokens: Field required"
        if any(m.get("role") == "system" for m in body.get("messages") or []):
            return 'messages: Unexpected role "system". Use the top-level `system` parameter.'
        return super().validate(body)

    def _stop(self, reply: Reply, script: Script) -> str:
        return script.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")

    def _blocks(self, reply: Reply) -> list[dict]:
        blocks: list[dict] = [{"type": "text", "text": reply.text}] if reply.text else []
        blocks += [
            {"type": "tool_use", "id": cid, "name": name, "input": args}
            for cid, name, args in reply.tool_calls
        ]
        return blocks

    def stream_frames(self, body: dict, reply: Reply, script: Script) -> list[Frame]:
        message = self._message(reply, content=[], stop=None)
        message["usage"]["output_tokens"] = 1
        frames = [
            Frame(sse({"type": "message_start", "message": message}, "message_start")),
            Frame(sse({"type": "ping"}, "ping")),
        ]

        def event(name: str, **payload: object) -> bytes:
            return sse({"type": name, **payload}, name)

        index = 0
        if reply.text:
            start = {"type": "text", "text": ""}
            frames.append(Frame(event("content_block_start", index=0, content_block=start)))
            for piece in self.chunks_of(reply, script):
                delta = {"type": "text_delta", "text": piece}
                frames.append(Frame(event("content_block_delta", index=0, delta=delta), True))
            frames.append(Frame(event("content_block_stop", index=0)))
            index = 1
        for cid, name, args in reply.tool_calls:
            start = {"type": "tool_use", "id": cid, "name": name, "input": {}}
            frames.append(Frame(event("content_block_start", index=index, content_block=start)))
            for fragment in ["", *halves(json.dumps(args))]:
                delta = {"type": "input_json_delta", "partial_json": fragment}
                frames.append(Frame(event("content_block_delta", index=index, delta=delta), True))
            frames.append(Frame(event("content_block_stop", index=index)))
            index += 1
        delta = {"stop_reason": self._stop(reply, script), "stop_sequence": None}
        usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
        frames.append(Frame(event("message_delta", delta=delta, usage=usage), final=True))
        frames.append(Frame(event("message_stop"), final=True))
        return frames

    def _message(self, reply: Reply, *, content: list, stop: str | None) -> dict:
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
        }

    def full_payload(self, body: dict, reply: Reply, script: Script) -> dict:
        return self._message(reply, content=self._blocks(reply), stop=self._stop(reply, script))
