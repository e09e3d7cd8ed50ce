"""What a surface asks of the pipeline: one turn, normalized."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from providers.content import Part
from providers.types import Message, ToolSpec
from tenants.models import ApiKey, Subtenant


@dataclass(frozen=True)
class ChatSend:
    """A send to a stored chat: the request is built from its history (and memories),
    and what the client sent is stored first: its text, or results of tools it ran."""

    chat: Any  # chats.models.Chat
    content: str | None = None  # the text (of the parts, when there are parts)
    parts: tuple[Part, ...] = ()  # images and documents with the text, as providers.content
    tool_results: tuple[dict[str, Any], ...] = ()
    include_memories: bool = False
    memory_keys: list[str] | None = None


@dataclass(frozen=True)
class ChatExchange:
    """A conversation the client holds, mirrored into a chat (`X-Chat-ID`): the request's
    newest user or tool message is stored, then the answer."""

    chat_id: str


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
    chat: ChatSend | ChatExchange | None = None
