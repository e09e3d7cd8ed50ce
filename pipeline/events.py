"""What a turn yields: the one event sequence every surface formats.

A turn yields `Started` first and ends with exactly one `Completed` or `Failed`. In a
chat, `message` fields are the stored rows (`chats.models.Message`); elsewhere None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from providers.core.loop import ToolResult, TurnCompleted
from providers.core.types import ToolCall, Usage
from providers.gateway import Target


@dataclass(frozen=True, slots=True)
class Started:
    turn_id: str
    target: Target
    # In a chat: the user (or tool result) messages stored, and the assistant's row.
    input_messages: tuple[Any, ...] = ()
    message: Any = None


@dataclass(frozen=True, slots=True)
class AssistantOpened:
    """A new assistant message of a chat: a round after server-side tools ran."""

    message: Any


@dataclass(frozen=True, slots=True)
class Delta:
    text: str
    message: Any = None


@dataclass(frozen=True, slots=True)
class ToolCalled:
    call: ToolCall
    # True: the server runs it (a `ToolRan` follows); False: the client's to run.
    server_side: bool
    message: Any = None


@dataclass(frozen=True, slots=True)
class ToolRan:
    result: ToolResult
    message: Any = None


@dataclass(frozen=True, slots=True)
class Completed:
    turn_id: str
    turn: TurnCompleted
    text: str  # every round's text, in order
    message: Any = None  # the final assistant message
    messages: tuple[Any, ...] = ()  # the assistant and tool messages stored
    input_messages: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class TurnError:
    """A failure as every surface needs it: the exception (for wire-specific mapping)
    and our error shape, status and headers."""

    exc: BaseException
    body: dict[str, Any]  # {"type", "message", "details"}
    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Failed:
    error: TurnError
    message: Any = None  # the assistant message left unfinished, if any


@dataclass(frozen=True, slots=True)
class Interrupted:
    """What a chat turn that its consumer stopped left stored (`Turn.interrupted`)."""

    message: Any  # the newest assistant message, with the text it had
    messages: tuple[Any, ...]
    input_messages: tuple[Any, ...]
    usage: Usage


Event = Started | AssistantOpened | Delta | ToolCalled | ToolRan | Completed | Failed
