"""The turn pipeline: every model call of every surface goes through here.

A surface parses its wire format into a `TurnSpec`, calls `start`, and formats the
events of `Turn.events`. The pipeline applies limits and budgets, resolves the model
and its fallbacks, runs the tool loop over the server's tools, records every call,
and, when the turn belongs to a chat, persists it. Nothing else does any of these.
"""

from pipeline.events import (
    AssistantOpened,
    Completed,
    Delta,
    Event,
    Failed,
    Interrupted,
    Started,
    ToolCalled,
    ToolRan,
    TurnError,
)
from pipeline.spec import ChatExchange, ChatSend, TurnSpec
from pipeline.turn import OpenedStream, Turn, start

__all__ = [
    "AssistantOpened",
    "ChatExchange",
    "ChatSend",
    "Completed",
    "Delta",
    "Event",
    "Failed",
    "Interrupted",
    "OpenedStream",
    "Started",
    "ToolCalled",
    "ToolRan",
    "Turn",
    "TurnError",
    "TurnSpec",
    "start",
]
