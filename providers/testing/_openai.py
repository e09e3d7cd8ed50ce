"""The fake OpenAI server: Chat Completions (JSON, or SSE chunks ending in `[DONE]`),
`/v1/models` and `/v1/embeddings`."""

from __future__ import annotations

import json

from providers.testing._chat import CREATED, Frame, Reply, halves, sse
from providers.testing._embeddings import EmbeddingFake, base64_vector, valid_inputs
from providers.testing._server import Response, Script


class FakeOpenAI(EmbeddingFake):
    """OpenAI Chat Completions (also stands in for OpenAI-compatible private clouds), and
    its embeddings."""

    vendor = "openai"
    default_models = ("gpt-4o-mini", "gpt-4o")
    chat_path = "/v1/chat/completions"
    models_path = "/v1/models"
    embed_path = "/v1/embeddings"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    _ERROR_TYPES = {
        400: "invalid_request_error",
        401: "invalid_request_error",
        404: "invalid_request_error",
        429: "rate_limit_exceeded",
    }

    def send_error(
        self,
        response: Response,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        kind = error_type or self._ERROR_TYPES.get(status, "server_error")
        payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        response.send_json(status, payload, headers)

    def stream_error(self, message: str, error_type: str | None) -> bytes:
        return sse({"error": {"message": message, "type": error_type or "server_error"}})

    def models_payload(self) -> dict:
        data = [
            {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}
            for m in self.models
        ]
        return {"object": "list", "data": data}

    def _finish(self, reply: Reply, script: Script) -> str:
        return script.finish_reason or ("tool_calls" if reply.tool_calls else "stop")

    def embedding_problem(self, body: dict) -> str | None:
        if not body.get("model"):
            return "you must provide a model parameter"
        if not valid_inputs(body.get("input"), token_ids=True):
            return "'$.input' is invalid. Please check the API reference."
        if body.get("encoding_format", "float") not in ("float", "base64"):
            return "encoding_format: must be 'float' or 'base64'"
        return None

    def embedding_payload(self, body: dict, vectors: list[list[float]], tokens: int) -> dict:
        packed = body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": base64_vector(v) if packed else v}
            for i, v in enumerate(vectors)
        ]
        return {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _usage(self, reply: Reply) -> dict:
        total = reply.input_tokens + reply.output_tokens
        return {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": total,
        }

    def stream_frames(self, body: dict, reply: Reply, script: Script) -> list[Frame]:
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": reply.model,
        }
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            payload = {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
            }
            if with_usage:
                payload["usage"] = None
            return sse(payload)

        frames = [Frame(chunk({"role": "assistant", "content": ""}))]
        frames += [
            Frame(chunk({"content": p}), content=True) for p in self.chunks_of(reply, script)
        ]
        for index, (call_id, name, args) in enumerate(reply.tool_calls):
            head = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            frames.append(Frame(chunk({"tool_calls": [head]}), content=True))
            for fragment in halves(json.dumps(args)):
                delta = {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                frames.append(Frame(chunk(delta), content=True))
        frames.append(Frame(chunk({}, self._finish(reply, script)), final=True))
        if with_usage:
            usage_chunk = {**base, "choices": [], "usage": self._usage(reply)}
            frames.append(Frame(sse(usage_chunk), final=True))
        frames.append(Frame(sse("[DONE]"), final=True))
        return frames

    def full_payload(self, body: dict, reply: Reply, script: Script) -> dict:
        message: dict = {"role": "assistant", "content": reply.text or None, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": cid,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for cid, name, args in reply.tool_calls
            ]
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": self._finish(reply, script),
        }
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": CREATED,
            "model": reply.model,
            "choices": [choice],
            "usage": self._usage(reply),
        }
