"""The fake Ollama server: native `/api/chat` (JSON, or newline-delimited JSON
streaming), `/api/tags` and `/api/embed`."""

from __future__ import annotations

import json

from providers.testing._chat import Frame, Reply
from providers.testing._embeddings import EmbeddingFake, valid_inputs
from providers.testing._server import RecordedRequest, Response, Script


class FakeOllama(EmbeddingFake):
    """Ollama's native /api/chat with newline-delimited JSON streaming, and /api/embed."""

    vendor = "ollama"
    default_models = ("llama3.2:latest", "qwen2.5:7b")
    chat_path = "/api/chat"
    models_path = "/api/tags"
    embed_path = "/api/embed"
    stream_content_type = "application/x-ndjson"

    def send_error(
        self,
        response: Response,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        response.send_json(status, {"error": message}, headers)

    def stream_error(self, message: str, error_type: str | None) -> bytes:
        return json.dumps({"error": message}).encode() + b"\n"

    def models_payload(self) -> dict:
        return {
            "models": [
                {
                    "name": m,
                    "model": m,
                    "modified_at": "2025-01-01T00:00:00Z",
                    "size": 1,
                    "digest": "0" * 64,
                    "details": {},
                }
                for m in self.models
            ]
        }

    def validate(self, body: dict) -> str | None:
        return None if body.get("model") else "model is required"

    def wants_stream(self, body: dict) -> bool:
        return body.get("stream", True) is not False  # Ollama streams by default

    def embedding_problem(self, body: dict) -> str | None:
        if not body.get("model"):
            return "model is required"
        if not valid_inputs(body.get("input"), token_ids=False):
            return "invalid input type"
        return None

    def embedding_payload(self, body: dict, vectors: list[list[float]], tokens: int) -> dict:
        return {
            "model": body["model"],
            "embeddings": vectors,
            "total_duration": 1000,
            "load_duration": 10,
            "prompt_eval_count": tokens,
        }

    def _done(self, reply: Reply, script: Script, message: dict) -> dict:
        return {
            "model": reply.model,
            "created_at": "2025-01-01T00:00:00Z",
            "message": message,
            "done": True,
            "done_reason": script.finish_reason or "stop",
            "total_duration": 1000,
            "load_duration": 10,
            "prompt_eval_count": reply.input_tokens,
            "prompt_eval_duration": 100,
            "eval_count": reply.output_tokens,
            "eval_duration": 500,
        }

    def _calls(self, reply: Reply) -> list[dict]:
        return [
            {"function": {"name": name, "arguments": args}} for _, name, args in reply.tool_calls
        ]

    def stream_frames(self, body: dict, reply: Reply, script: Script) -> list[Frame]:
        def line(payload: dict) -> bytes:
            return json.dumps(payload, separators=(",", ":")).encode() + b"\n"

        def partial(message: dict) -> bytes:
            return line(
                {
                    "model": reply.model,
                    "created_at": "2025-01-01T00:00:00Z",
                    "message": message,
                    "done": False,
                }
            )

        frames = [
            Frame(partial({"role": "assistant", "content": piece}), content=True)
            for piece in self.chunks_of(reply, script)
        ]
        if reply.tool_calls:
            message = {"role": "assistant", "content": "", "tool_calls": self._calls(reply)}
            frames.append(Frame(partial(message), content=True))
        done = self._done(reply, script, {"role": "assistant", "content": ""})
        frames.append(Frame(line(done), final=True))
        return frames

    def full_payload(self, body: dict, reply: Reply, script: Script) -> dict:
        message: dict = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message["tool_calls"] = self._calls(reply)
        return self._done(reply, script, message)

    async def handle(self, request: RecordedRequest, response: Response) -> None:
        if request.method in ("GET", "HEAD") and request.path == "/":
            response.send_bytes(200, b"Ollama is running", "text/plain; charset=utf-8")
            return
        await super().handle(request, response)
