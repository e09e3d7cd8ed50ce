"""What a surface asks of the pipeline: one turn, normalized."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from providers.core.content import Part
from providers.core.types import Message, ToolSpec
from tenants.models import ApiKey, Subtenant


@dataclass(frozen=True)
class ChatSend:
    """A send to a stored chat: the request is built from its history (and memories),
    and what the client sent is stored first: its text, or results of tools it ran."""

    chat: Any  # chats.models.Chat
    content: str | None = None  # the text (of the parts, when there are parts)
    parts: tuple[Part, ...] = ()  # images and documents with the text, as providers.core.content
    tool_results: tuple[dict[str, Any], ...] = ()
    include_memories: bool = False
    memory_keys: list[str] | None = None


@dataclass(frozen=True)
class ChatExchange:
    """A conversation mirrored into a chat: what the request sent is stored, then the
    answer.

    By default (`X-Chat-ID` on `/v1/chat/completions`) the client holds the
    conversation and its newest user or tool message is stored. A surface may instead
    name the messages to store (`incoming`), have the chat's stored history come before
    the request's messages (`continues`), and have the chat created with the first rows,
    in their transaction (`create`: the chat's fields; `chat_id` is then its new id)."""

    chat_id: str
    incoming: tuple[Message, ...] | None = None
    continues: bool = False
    create: dict[str, Any] | None = None
    # On the assistant rows of the turn.
    metadata: dict[str, Any] = field(default_factory=lambda: {"source": "openai_compat"})

    def with_metadata(self, **fields: Any) -> ChatExchange:
        return replace(self, metadata={**self.metadata, **fields})


@dataclass(frozen=True)
class TurnSpec:
    subtenant: Subtenant
    api_key: ApiKey | None
    source: str  # the LlmCall source: "chat", "direct" or "openai_compat"
    # The model asked for: "provider/model", an alias (MODEL_ALIASES), a bare model name,
    # or nothing (the chat's, then the subtenant's default).
    provider: str | None = None
    model: str | None = None
    fallbacks: list[str] | None = None  # None: LLM_FALLBACKS
    messages: tuple[Message, ...] = ()  # the conversation, unless a ChatSend builds it
    tools: tuple[ToolSpec, ...] = ()  # the client's own tools
    tool_choice: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    server_tools: bool | list[str] | None = None  # None: all, False: none, [names]: those
    # Body fields only one kind of vendor has (Anthropic's `top_k`, `thinking`), by kind:
    # sent to the providers of that kind in the chain, not to the others.
    vendor_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    chat: ChatSend | ChatExchange | None = None
