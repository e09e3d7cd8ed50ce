"""An MCP tool result's content as what a model reads: text, images and documents.

Text blocks and text resources become text; images and image or PDF resource blobs
become content parts (`providers.core.content`), checked like the parts a client sends:
accepted types only, valid base64, bytes that look like their type, within the size
limits. Whatever the model cannot take (audio, another type, an oversize or broken
binary) becomes a short note in the text, never an error: the tool did run. Resource
links are named, never fetched. Django-free: the limits are passed in.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from providers.core.content import (
    DOCUMENT_TYPES,
    IMAGE_TYPES,
    BinaryPart,
    ContentLimits,
    DocumentPart,
    ImagePart,
    Part,
    TextPart,
    looks_like,
)

TRUNCATED = "\n[result truncated]"
# A server's URIs, names and types are quoted in notes; bounded so a note stays a note.
_LABEL_CHARS = 300


@dataclass(frozen=True, slots=True)
class ResultContent:
    text: str  # everything the model reads as text, in order
    # Empty when the result is text only; otherwise TextPart(text), then the binaries.
    parts: tuple[Part, ...] = ()


def result_content(
    blocks: Sequence[Mapping[str, Any]],
    *,
    structured: Mapping[str, Any] | None = None,
    limits: ContentLimits,
    max_text_chars: int,
) -> ResultContent:
    """`blocks`: a CallToolResult's content as JSON (MCP's field names, `mimeType`).

    Without any text, the text is the structured content as JSON (or the blocks as
    JSON when there is nothing else either, as a text-only result always was). The
    text is cut to `max_text_chars`, ending in "[result truncated]"."""
    collected = _Collector(limits)
    for block in blocks:
        collected.add(block)
    text = "\n".join(collected.texts)
    if not text:
        if structured:
            text = json.dumps(structured, ensure_ascii=False, default=str)
        elif not collected.binaries:
            text = json.dumps(list(blocks), ensure_ascii=False, default=str)
    text = _truncated(text, max_text_chars)
    if not collected.binaries:
        return ResultContent(text)
    return ResultContent(text, (TextPart(text), *collected.binaries))


def _truncated(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    if max_chars <= len(TRUNCATED):
        return text[:max_chars]
    return text[: max_chars - len(TRUNCATED)] + TRUNCATED


class _Collector:
    def __init__(self, limits: ContentLimits) -> None:
        self.limits = limits
        self.texts: list[str] = []
        self.binaries: list[BinaryPart] = []
        self.total_bytes = 0

    def add(self, block: Mapping[str, Any]) -> None:
        kind = block.get("type")
        if kind == "text":
            self.texts.append(str(block.get("text", "")))
        elif kind == "image":
            mime = _mime(block)
            what = f"image of type {_label(mime)}"
            self._binary(block.get("data"), mime, what, accepted=IMAGE_TYPES)
        elif kind == "resource":
            self._resource(block.get("resource") or {})
        elif kind == "resource_link":
            self.texts.append(_link(block))
        elif kind == "audio":
            self.texts.append(f"[audio of type {_label(_mime(block))} omitted]")
        else:
            self.texts.append(f"[content of type {_label(str(kind))} omitted]")

    def _resource(self, resource: Mapping[str, Any]) -> None:
        uri = str(resource.get("uri", ""))
        mime = _mime(resource)
        if "text" in resource:
            self.texts.append(f"[resource {_label(uri)}]\n{resource.get('text') or ''}")
        elif "blob" in resource:
            what = f"resource {_label(uri)} of type {_label(mime)}"
            accepted = (*IMAGE_TYPES, *DOCUMENT_TYPES)
            if self._binary(resource.get("blob"), mime, what, accepted, _filename(uri)):
                self.texts.append(f"[resource {_label(uri)} ({mime}), attached]")
        else:
            self.texts.append(f"[resource {_label(uri)} without content]")

    def _binary(
        self,
        data: Any,
        mime: str,
        what: str,
        accepted: tuple[str, ...],
        filename: str | None = None,
    ) -> bool:
        """Keep one image or document, or note why not; True when kept."""
        if mime not in accepted:
            self.texts.append(f"[{what} omitted]")
            return False
        decoded, reason = self._accepted(data, mime)
        if reason is not None:
            self.texts.append(f"[{what} omitted: {reason}]")
            return False
        self.total_bytes += len(decoded)
        if mime in IMAGE_TYPES:
            self.binaries.append(ImagePart(mime, decoded))
        else:
            self.binaries.append(DocumentPart(mime, decoded, filename))
        return True

    def _accepted(self, data: Any, mime: str) -> tuple[bytes, str | None]:
        """The decoded bytes, or why they cannot go to the model."""
        if not isinstance(data, str):
            return b"", "no data"
        # The text part comes first and counts among a message's parts.
        if len(self.binaries) + 1 >= self.limits.parts:
            return b"", f"at most {self.limits.parts - 1} images and documents per result"
        decoded, reason = _decoded(data, self.limits)
        if reason is not None:
            return b"", reason
        if not looks_like(mime, decoded):
            return b"", f"its bytes are not {mime}"
        if self.total_bytes + len(decoded) > self.limits.message_bytes:
            limit = self.limits.message_bytes
            return b"", f"the result's images and documents would exceed {limit} bytes"
        return decoded, None


def _decoded(data: str, limits: ContentLimits) -> tuple[bytes, str | None]:
    payload = "".join(data.split())  # some servers wrap their base64
    # Checked before decoding: base64 is 4/3 of the bytes it carries.
    if len(payload) * 3 // 4 > limits.part_bytes + 3:
        return b"", f"larger than {limits.part_bytes} bytes"
    try:
        decoded = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return b"", "not valid base64"
    if len(decoded) > limits.part_bytes:
        return b"", f"larger than {limits.part_bytes} bytes"
    return decoded, None


def _link(block: Mapping[str, Any]) -> str:
    details = [f"name: {_label(str(block.get('name', '')))}"]
    if block.get("mimeType"):
        details.append(f"type: {_label(str(block['mimeType']))}")
    uri = _label(str(block.get("uri", "")))
    return f"[resource link: {uri} ({'; '.join(details)}), not fetched]"


def _mime(value: Mapping[str, Any]) -> str:
    mime = str(value.get("mimeType") or "").split(";")[0].strip().lower()
    return mime or "unknown"


def _filename(uri: str) -> str | None:
    name = uri.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    return name[:255] or None


def _label(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= _LABEL_CHARS else value[:_LABEL_CHARS] + "..."
