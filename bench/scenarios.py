"""What is measured: each scenario is one entry, a request per system that answers it.

A scenario's `build` gets the running `Stack` (its API key, its subtenant, and
`stack.django_json(code)` to create data through the project's services) and returns the
equivalent request for each server: "direct" is the fake upstream called as a client
would call the vendor, the baseline; "gateway" is the same work through llmwrapper. The
report compares every other server with "direct".

To add a scenario, write its build function and add a `Scenario` to `SCENARIOS`. Other
systems than the gateway get a `Call` too when they run: `compat` and `compat-stream` also
load LiteLLM's proxy ("litellm") when the stack started it (`run.py --compare-litellm`).

The chat scenarios create, through the project's services, a pool of chats that each
hold N prior messages and send `POST /api/v1/chats/{id}/messages` (or `/messages/stream`)
to them in turn. Each send appends two messages (the user's and the answer), so the
chats grow while the run lasts; rotating over a pool keeps the small case small (see
`_chat_pool_size`). The direct baseline is the vendor call carrying exactly the messages
the gateway sends for the first chat of the pool at the start: its history window
(`CHAT_HISTORY_MAX_MESSAGES`, `CHAT_CONTEXT_MAX_TOKENS`) plus the new message.
"""

from __future__ import annotations

import math
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
    # Concurrency levels when `run.py --concurrency` is not given (None: run.py's default).
    concurrency: tuple[int, ...] | None = None
    wrk: bool = True  # False: only the streaming probe measures it
    group: str = "llm"  # report section: "llm", "chat" or "compat"
    # What the requests change as they run (e.g. messages per chat): recorded before
    # the load starts and after it ends.
    state: Callable[[Stack, dict[str, Call]], dict[str, Any]] | None = None


def _auth(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.api_key}"}


def _direct_hello() -> Call:
    """The vendor called directly with `hello`, the baseline of the plain scenarios."""
    return Call("direct", "/v1/chat/completions", {"model": MODEL, "messages": HELLO}, expect=ECHO)


def llm_complete(stack: Stack) -> dict[str, Call]:
    return {
        "direct": _direct_hello(),
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


def anthropic_messages(stack: Stack) -> dict[str, Call]:
    """The Anthropic-compatible endpoint as Anthropic's clients call it (`x-api-key`),
    in front of the same OpenAI-shaped upstream."""
    return {
        "direct": _direct_hello(),
        "gateway": Call(
            "gateway",
            "/v1/messages",
            {"model": f"openai/{MODEL}", "max_tokens": 100, "messages": HELLO},
            {"x-api-key": stack.api_key, "anthropic-version": "2023-06-01"},
            expect=ECHO,
        ),
    }


# -- the OpenAI-compatible endpoint, and LiteLLM's proxy beside it -----------------------


def _compat(stack: Stack, *, stream: bool) -> dict[str, Call]:
    extra: dict[str, Any] = (
        {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    )
    expect = b"[DONE]" if stream else ECHO
    first_token = OPENAI_FIRST_TOKEN if stream else None
    calls = {
        "direct": Call(
            "direct",
            "/v1/chat/completions",
            {"model": MODEL, "messages": HELLO, **extra},
            expect=expect,
            first_token=first_token,
        ),
        "gateway": Call(
            "gateway",
            "/v1/chat/completions",
            {"model": f"openai/{MODEL}", "messages": HELLO, **extra},
            _auth(stack),
            expect=expect,
            first_token=first_token,
        ),
    }
    if "litellm" in stack.servers:
        calls["litellm"] = Call(
            "litellm",
            "/v1/chat/completions",
            {"model": MODEL, "messages": HELLO, **extra},
            {"Authorization": f"Bearer {stack.litellm_key}"},
            expect=expect,
            first_token=first_token,
        )
    return calls


def compat_complete(stack: Stack) -> dict[str, Call]:
    return _compat(stack, stream=False)


def compat_stream(stack: Stack) -> dict[str, Call]:
    return _compat(stack, stream=True)


# -- chat sends ----------------------------------------------------------------------

CHAT_SEND = {"content": "hi", "server_tools": False}
CHAT_ECHO = b"echo: hi"
# Prior messages: alternating user questions and longer assistant answers, about 70
# tokens each by the gateway's estimate, so 100 of them (the default history window)
# stay well under CHAT_CONTEXT_MAX_TOKENS and the window is bounded by count.
_QUESTION = "Question {i}: how does the quarterly report compare with the previous one?"
_ANSWER = (
    "Answer {i}: revenue grew a little, costs stayed flat, and the main change is in "
    "the regional split, where the north gained share from the south. The details "
    "are in the appendix, with the monthly figures and the notes on each region."
)

_CHAT_SETUP = """
from django.conf import settings
from chats import history, services
from chats.models import Chat, Message
from tenants.models import Subtenant

sub = Subtenant.objects.get(pk={subtenant!r})
rows = [
    {{'role': 'user' if i % 2 == 0 else 'assistant',
      'content': ({question!r} if i % 2 == 0 else {answer!r}).format(i=i)}}
    for i in range({messages})
]
ids = []
for _ in range({chats}):
    chat = services.chat_create(
        subtenant=sub, title='bench: {messages} messages', provider='openai', model={model!r}
    )
    services.messages_append(chat=chat, messages=rows)
    ids.append(str(chat.pk))

# What the gateway will send for the first chat: its window plus the new message.
first = Chat.objects.get(pk=ids[0])
recent = history.load_recent(chat=first)
recent.append(history.to_normalized(Message(
    chat=first, sequence=first.last_sequence + 1, role='user', content={content!r})))
recent = recent[-settings.CHAT_HISTORY_MAX_MESSAGES:]
system = history.system_context(chat=first, include_memories=False, memory_keys=None)
built = history.build_messages(recent=recent, system=system)
result = {{
    'chats': ids,
    'window': [{{'role': m.role, 'content': m.content}} for m in built],
    'history_max_messages': settings.CHAT_HISTORY_MAX_MESSAGES,
    'context_max_tokens': settings.CHAT_CONTEXT_MAX_TOKENS,
}}
"""

_CHAT_STATE = """
from django.db.models import Count
from chats.models import Message

counts = list(
    Message.objects.filter(chat_id__in={ids!r}).values('chat_id')
    .annotate(n=Count('id')).values_list('n', flat=True)
)
result = {{'chats': len(counts), 'min': min(counts), 'max': max(counts), 'total': sum(counts)}}
"""

# Sends a run makes to one pool, roughly: warm-up, c=1 and c=8 phases of a few seconds.
_EXPECTED_SENDS = 1000


def _chat_pool_size(messages: int) -> int:
    """Chats in the pool: enough that each grows by about its own size at most.

    A send appends two messages. With 10 prior messages and one chat, a run's thousand
    sends would leave 2,000: the pool (100 chats) keeps each under about 30. From 100
    messages on the window is full, so growth changes the database, not the request:
    those pools hold 1,000 prior messages in all (10 chats of 100, one of 1,000).
    """
    wanted = math.ceil(2 * _EXPECTED_SENDS / messages)
    return max(1, min(wanted, 1000 // messages))


def _chat_calls(stack: Stack, messages: int, *, stream: bool) -> dict[str, Call]:
    setup = _CHAT_SETUP.format(
        subtenant=stack.subtenant_id,
        messages=messages,
        chats=_chat_pool_size(messages),
        question=_QUESTION,
        answer=_ANSWER,
        model=MODEL,
        content=CHAT_SEND["content"],
    )
    created = stack.django_json(setup)
    paths = tuple(
        f"/api/v1/chats/{chat_id}/messages" + ("/stream" if stream else "")
        for chat_id in created["chats"]
    )
    window: list[dict[str, str]] = created["window"]
    direct_body: dict[str, Any] = {"model": MODEL, "messages": window}
    if stream:
        direct_body["stream"] = True
    return {
        "direct": Call(
            "direct",
            "/v1/chat/completions",
            direct_body,
            expect=b"[DONE]" if stream else CHAT_ECHO,
            first_token=OPENAI_FIRST_TOKEN if stream else None,
        ),
        "gateway": Call(
            "gateway",
            paths[0],
            dict(CHAT_SEND),
            _auth(stack),
            expect=b"event: message.completed" if stream else CHAT_ECHO,
            first_token=GATEWAY_FIRST_TOKEN if stream else None,
            paths=paths,
        ),
    }


def chat_state(stack: Stack, calls: dict[str, Call]) -> dict[str, Any]:
    """Messages per chat of the pool the gateway's call rotates over."""
    ids = [path.split("/")[4] for path in calls["gateway"].all_paths]
    state: dict[str, Any] = stack.django_json(_CHAT_STATE.format(ids=ids))
    state["window"] = len(calls["direct"].body["messages"])
    return state


def _chat_scenario(messages: int, *, stream: bool) -> Scenario:
    path = "/api/v1/chats/{id}/messages" + ("/stream (SSE)" if stream else "")
    return Scenario(
        f"chat-stream-{messages}" if stream else f"chat-{messages}",
        f"POST {path}, chats holding {messages} prior messages",
        stream=stream,
        build=lambda stack: _chat_calls(stack, messages, stream=stream),
        concurrency=(1,) if stream else (1, 8),
        wrk=not stream,  # streams: time to first delta (and to the end) by the probe
        group="chat",
        state=chat_state,
    )


CHAT_SIZES = (10, 100, 1000)

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
        Scenario(
            "anthropic",
            "POST /v1/messages (Anthropic-compatible, x-api-key) vs POST /v1/chat/completions",
            stream=False,
            build=anthropic_messages,
        ),
        *(_chat_scenario(n, stream=False) for n in CHAT_SIZES),
        *(_chat_scenario(n, stream=True) for n in CHAT_SIZES),
        Scenario(
            "compat",
            "POST /v1/chat/completions (OpenAI-compatible) on each system",
            stream=False,
            build=compat_complete,
            concurrency=(1, 16, 64),
            group="compat",
        ),
        Scenario(
            "compat-stream",
            "POST /v1/chat/completions with stream: true and usage, on each system",
            stream=True,
            build=compat_stream,
            concurrency=(1, 16, 64),
            group="compat",
        ),
    )
}
# What `run.py` measures without --scenarios.
DEFAULT_SCENARIOS = ("complete", "stream")
