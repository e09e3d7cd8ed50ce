"""What is measured: each scenario is one entry, a request per system that answers it.

A scenario's `build` gets the running `Stack` (its API key, its subtenant, and
`stack.django_json(code)` to create data through the project's services) and returns the
equivalent request for each server: "direct" is the fake upstream called as a client
would call the vendor, the baseline; "gateway" is the same work through llmwrapper. The
report compares every other server with "direct".

To add a scenario, write its build function and add a `Scenario` to `SCENARIOS`; for a
chat with N prior messages, for example, `build` creates the chat and its messages with
`stack.django_json`, returns the gateway's `POST /api/v1/chats/{id}/messages` and, as the
direct baseline, the vendor call carrying those N messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from load import Call

if TYPE_CHECKING:
    from stack import Stack

MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello"}]
ECHO = b"echo: hello"  # what the fake upstream answers to HELLO (streamed in pieces)

# The first token of a streamed answer: the gateway's first `delta` event; the vendor's
# first chunk with non-empty content (its very first chunk only announces the role).
GATEWAY_FIRST_TOKEN = rb"event: delta\n"
OPENAI_FIRST_TOKEN = rb'"content":"[^"]'


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    stream: bool  # a streamed answer: also probe time to first byte and first token
    build: Callable[[Stack], dict[str, Call]]


def _auth(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.api_key}"}


def llm_complete(stack: Stack) -> dict[str, Call]:
    return {
        "direct": Call(
            "direct", "/v1/chat/completions", {"model": MODEL, "messages": HELLO}, expect=ECHO
        ),
        "gateway": Call(
            "gateway",
            "/api/v1/llm/complete",
            {"provider": "openai", "model": MODEL, "messages": HELLO},
            _auth(stack),
            expect=ECHO,
        ),
    }


def llm_stream(stack: Stack) -> dict[str, Call]:
    body: dict[str, Any] = {"model": MODEL, "messages": HELLO, "stream": True}
    return {
        "direct": Call(
            "direct",
            "/v1/chat/completions",
            body,
            expect=b"[DONE]",
            first_token=OPENAI_FIRST_TOKEN,
        ),
        "gateway": Call(
            "gateway",
            "/api/v1/llm/stream",
            {"provider": "openai", "model": MODEL, "messages": HELLO},
            _auth(stack),
            expect=b"event: message.completed",
            first_token=GATEWAY_FIRST_TOKEN,
        ),
    }


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "complete",
            "POST /api/v1/llm/complete vs POST /v1/chat/completions",
            stream=False,
            build=llm_complete,
        ),
        Scenario(
            "stream",
            "POST /api/v1/llm/stream (SSE) vs POST /v1/chat/completions with stream: true",
            stream=True,
            build=llm_stream,
        ),
    )
}
