"""What the adapters share about images and documents (see providers.core.content)."""

from __future__ import annotations

from providers.core.content import BinaryPart, DocumentPart, ImagePart, Part, TextPart
from providers.core.types import Message


def lift_tool_parts(messages: tuple[Message, ...]) -> list[Message]:
    """For vendors whose tool messages take text only (OpenAI Chat Completions, Ollama):
    each tool message keeps its text, and the images and documents of a run of tool
    messages follow it in one user message, each tool's marked as that tool's output.

    The user message comes after the whole run: the vendors want a tool call's results
    right after the assistant message that made it.
    """
    out: list[Message] = []
    lifted: list[Part] = []
    for message in messages:
        if message.role != "tool" and lifted:
            out.append(Message("user", "", parts=tuple(lifted)))
            lifted = []
        if message.role == "tool" and message.parts:
            binaries = binary_parts(message.parts)
            if binaries:
                lifted += [TextPart(tool_output_label(message)), *binaries]
            out.append(
                Message(
                    "tool", message.content, tool_call_id=message.tool_call_id, name=message.name
                )
            )
            continue
        out.append(message)
    if lifted:
        out.append(Message("user", "", parts=tuple(lifted)))
    return out


def tool_output_label(message: Message) -> str:
    name = message.name or "tool"
    return f"[Output of the tool '{name}' (call {message.tool_call_id or '?'}), not the user's:]"


def binary_parts(parts: tuple[Part, ...]) -> list[BinaryPart]:
    return [p for p in parts if isinstance(p, ImagePart | DocumentPart)]


def omitted(part: BinaryPart, vendor: str) -> str:
    """The text that stands in for a part the vendor cannot take."""
    if isinstance(part, DocumentPart):
        name = f" {part.filename!r}" if part.filename else ""
        return f"[A document{name} ({part.media_type}) was omitted: {vendor} takes no documents.]"
    return f"[An image at {part.url} was omitted: {vendor} takes images as bytes only.]"
