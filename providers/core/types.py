"""Normalized, vendor-neutral types for LLM requests, results and stream events.

Every adapter translates its vendor's wire format to and from these types, so the rest
of the product (chats, tools, the direct and OpenAI-compatible APIs) never sees a
vendor payload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from providers.core.content import Part
from providers.core.errors import ProviderError, ProviderStreamInterruptedError

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict  # a JSON Schema object


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # set on role="tool": which call this answers
    name: str | None = None  # on role="tool": the tool's name (Ollama needs it)
    # The whole content, in order, when it holds images or documents (`content` is then
    # the text of these parts); empty for text-only messages. See providers.core.content.
    parts: tuple[Part, ...] = ()


@dataclass(frozen=True, slots=True)
class GenerationParams:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    response_format: dict | None = None  # OpenAI shape: {"type": "json_object" | "json_schema"}
    extra: dict = field(default_factory=dict)  # vendor-specific top-level body fields


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str  # "" means the provider's default model
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    # "auto" | "none" | "required", a tool name, or {"type": "function", "function": {"name"}}
    tool_choice: str | dict | None = None
    params: GenerationParams = field(default_factory=GenerationParams)


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def record_fields(self) -> dict[str, int]:
        """The counts as a call record stores them (`LlmCall`, chat messages, request logs)."""
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}

    def __add__(self, other: Usage) -> Usage:
        # A tool loop makes several calls; the chat reports their sum.
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )


# Stream events. A provider's stream yields text and whole tool calls as they come, then
# one UsageEvent and one Finished.


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallComplete:
    call: ToolCall


@dataclass(frozen=True, slots=True)
class UsageEvent:
    usage: Usage


@dataclass(frozen=True, slots=True)
class Finished:
    reason: FinishReason


# Attempt events say how a call got to its answer; they are not part of the answer. A
# `providers.core.retry.Retrying` provider yields AttemptStarted before each attempt, and the
# wrappers around it yield AttemptFailed for each failure they get past (a retry or a
# fallback); the last AttemptStarted names the provider that answered.


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    provider: str  # the configured name
    model: str
    vendor: str  # what the provider speaks: openai, anthropic, ollama, openai_compatible


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    error: ProviderError


OutputEvent = TextDelta | ToolCallComplete | UsageEvent | Finished
StreamEvent = OutputEvent | AttemptStarted | AttemptFailed


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    finish_reason: str
    model: str
    provider: str

    def to_message(self) -> Message:
        """The assistant message to append to the history for the next round."""
        return Message(role="assistant", content=self.text, tool_calls=self.tool_calls)


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """Inputs to embed in one vendor call: texts, or token ids (OpenAI-kind vendors)."""

    model: str  # "" means the provider's default model
    inputs: tuple[str, ...] | tuple[tuple[int, ...], ...]
    dimensions: int | None = None  # shorter vectors, where the model supports it


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    # One vector per input, in the request's order: a list of floats, or a float32
    # `array.array` when the vendor sent packed bytes (no float parsing on the way).
    vectors: tuple[Sequence[float], ...]
    usage: Usage  # input tokens only
    model: str


async def collect(events: AsyncIterator[StreamEvent], *, provider: str, model: str) -> ChatResult:
    """Fold a stream into one result (the sync transports' view of a stream).

    Each provider call emits one UsageEvent with its totals; the last one wins. When
    the stream reports attempts, the answering one names the result's provider and model.
    A stream that ends without a Finished event was cut off and raises.
    """
    parts: list[str] = []
    calls: list[ToolCall] = []
    usage = Usage()
    finish: str | None = None
    async for event in events:
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, ToolCallComplete):
            calls.append(event.call)
        elif isinstance(event, UsageEvent):
            usage = event.usage
        elif isinstance(event, Finished):
            finish = event.reason
        elif isinstance(event, AttemptStarted):
            provider, model = event.provider, event.model
    if finish is None:
        raise ProviderStreamInterruptedError(
            "The response stream ended before the model finished", provider=provider
        )
    return ChatResult(
        text="".join(parts),
        tool_calls=tuple(calls),
        usage=usage,
        finish_reason=finish,
        model=model,
        provider=provider,
    )
