"""Fake OpenAI, Anthropic and Ollama servers that speak each vendor's wire protocol.

Real HTTP on 127.0.0.1 (a free port unless given), served from a background thread, so
the official SDKs and our adapters run unmodified against them:

    with FakeOpenAI() as fake:                      # or: async with FakeOpenAI() as fake
        fake.enqueue(text="Hello world", chunks=3)
        fake.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
        fake.enqueue(status=429, retry_after=0)
        client = AsyncOpenAI(base_url=fake.base_url, api_key="k")
        ...
        fake.requests[-1].body                      # what the fake received

Each chat request takes the next scripted answer (see `FakeServer.enqueue`); with an
empty queue the answer is "echo: <last user message>". Streaming or not follows the
request's `stream` field as the vendor does (Ollama streams unless told not to).
Usage is deterministic: input = words in the request's messages (and system prompt),
output = words in the answer + 1 per tool call, unless `usage=(in, out)` is scripted.

The OpenAI fake also serves `POST /v1/embeddings` and the Ollama fake `POST /api/embed`,
in their vendors' formats (`fake.embedding_requests()` is what they received): each
input gets `fake_vector(input, dimensions)` (deterministic, unit length, float32-exact;
base64 when asked), and counts its words (or its token ids) as input tokens.

Run one standalone (for benchmarks): python -m providers.testing.fakes --vendor openai --port 9999
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading

from providers.core.base import ProviderDescriptor
from providers.core.vendors.anthropic import AnthropicProvider
from providers.core.vendors.ollama import OllamaProvider
from providers.core.vendors.openai import OpenAIProvider
from providers.testing._chat import CREATED, ChatFake, Frame, Reply, content_words, halves, sse
from providers.testing._embeddings import EmbeddingFake, base64_vector, valid_inputs
from providers.testing._server import RecordedRequest, Response, Script


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
        message = self._message(reply, script, content=[], stop=None)
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

    def _message(self, reply: Reply, script: Script, *, content: list, stop: str | None) -> dict:
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
        return self._message(
            reply, script, content=self._blocks(reply), stop=self._stop(reply, script)
        )


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


VENDORS: dict[str, type[ChatFake]] = {
    "openai": FakeOpenAI,
    "anthropic": FakeAnthropic,
    "ollama": FakeOllama,
}

# The fake that speaks each adapter's protocol: a vendor described with one of these
# adapters (an OpenAI-compatible cloud, say) is faked with no further change.
_FAKE_FOR_ADAPTER: dict[object, type[ChatFake]] = {
    OpenAIProvider: FakeOpenAI,
    AnthropicProvider: FakeAnthropic,
    OllamaProvider: FakeOllama,
}


def fake_for(described: ProviderDescriptor) -> type[ChatFake]:
    """The fake vendor server for a registered provider."""
    try:
        return _FAKE_FOR_ADAPTER[described.adapter]
    except KeyError:
        raise LookupError(f"No fake server speaks {described.adapter!r}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a fake LLM vendor server.")
    parser.add_argument("--vendor", choices=sorted(VENDORS), default="openai")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None, help="reject requests with another key")
    args = parser.parse_args(argv)
    fake = VENDORS[args.vendor](
        host=args.host, port=args.port, api_key=args.api_key, max_recorded=100
    )
    with fake:
        print(
            f"fake {args.vendor} listening on {fake.url} (SDK base URL {fake.base_url})", flush=True
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
