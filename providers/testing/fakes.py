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

Each vendor's server is a module of its own (`_openai`, `_anthropic`, `_ollama`) on the
shared chat flow (`_chat`); this module names them.

Run one standalone (for benchmarks): python -m providers.testing.fakes --vendor openai --port 9999
"""

from __future__ import annotations

import argparse
import contextlib
import threading

from providers.core.base import ProviderDescriptor
from providers.core.vendors.anthropic import AnthropicProvider
from providers.core.vendors.ollama import OllamaProvider
from providers.core.vendors.openai import OpenAIProvider
from providers.testing._anthropic import FakeAnthropic
from providers.testing._chat import ChatFake
from providers.testing._ollama import FakeOllama
from providers.testing._openai import FakeOpenAI

__all__ = ["VENDORS", "ChatFake", "FakeAnthropic", "FakeOllama", "FakeOpenAI", "fake_for", "main"]

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
