"""Message content beyond text: images and documents, normalized.

A message's `parts` hold its content in order when it has more than text; its `content`
then holds the text of those parts, so text-only readers (token estimates, titles, logs)
keep working. Clients send parts in OpenAI's Chat Completions format, which
`parse_content` checks and turns into these types; each adapter writes them in its
vendor's format. Django-free: limits are passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

from providers.core.error_base import GatewayError

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
DOCUMENT_TYPES = ("application/pdf",)
DETAILS = ("auto", "low", "high")

# What the first bytes of each accepted media type look like: a part whose bytes are
# not what its media type says is refused rather than forwarded.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
}


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image, inline (`data`, with its `media_type`) or by `url` (https)."""

    media_type: str = ""  # "" for a URL whose type the vendor finds out
    data: bytes | None = None
    url: str | None = None
    detail: str | None = None  # OpenAI's "auto" | "low" | "high"

    def base64(self) -> str:
        return base64.b64encode(self.data or b"").decode("ascii")

    def data_uri(self) -> str:
        return f"data:{self.media_type};base64,{self.base64()}"

    def sha256(self) -> str:
        return hashlib.sha256(self.data or b"").hexdigest()


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """A document (PDF), inline."""

    media_type: str
    data: bytes
    filename: str | None = None

    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def data_uri(self) -> str:
        return f"data:{self.media_type};base64,{self.base64()}"

    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


Part = TextPart | ImagePart | DocumentPart
BinaryPart = ImagePart | DocumentPart


@dataclass(frozen=True, slots=True)
class ContentLimits:
    part_bytes: int = 10 * 1024 * 1024  # decoded size of one image or document
    message_bytes: int = 20 * 1024 * 1024  # decoded size of a message's parts together
    parts: int = 20  # parts in one message


class ContentError(GatewayError):
    """A content part the gateway or the vendor cannot take: 400, or 413 for its size."""

    def __init__(self, message: str, *, where: str, type_: str = "invalid_content") -> None:
        super().__init__(message, details={"part": where})
        self.type = type_
        self.status = 413 if type_ == "content_too_large" else 400


def text_of(parts: tuple[Part, ...]) -> str:
    return "".join(p.text for p in parts if isinstance(p, TextPart))


def has_binary(parts: tuple[Part, ...]) -> bool:
    return any(not isinstance(p, TextPart) for p in parts)


def parse_content(
    value: Any, *, where: str, role: str = "user", limits: ContentLimits
) -> tuple[str, tuple[Part, ...]]:
    """A message's `content` as sent (a string, None or OpenAI-style parts) as its text
    and parts. Parts of text only collapse to the text (no parts); anything else keeps
    them all, in order. Raises ContentError naming the part (e.g. `messages[1].content[2]`)."""
    if value is None:
        return "", ()
    if isinstance(value, str):
        return value, ()
    if not isinstance(value, list):
        raise ContentError("Must be a string or a list of content parts.", where=where)
    if len(value) > limits.parts:
        raise ContentError(f"At most {limits.parts} content parts per message.", where=where)
    parts = tuple(_parse_part(item, f"{where}[{i}]", limits) for i, item in enumerate(value))
    if not has_binary(parts):
        return text_of(parts), ()
    if role not in ("user", "tool"):
        raise ContentError(
            f"Images and documents are accepted in user messages, not in {role!r} ones.",
            where=where,
        )
    total = sum(len(p.data or b"") for p in parts if not isinstance(p, TextPart))
    if total > limits.message_bytes:
        raise ContentError(
            f"The message's images and documents exceed {limits.message_bytes} bytes.",
            where=where,
            type_="content_too_large",
        )
    return text_of(parts), parts


def _parse_part(item: Any, where: str, limits: ContentLimits) -> Part:
    if not isinstance(item, dict):
        raise ContentError("A content part must be an object.", where=where)
    kind = item.get("type")
    if kind == "text":
        text = item.get("text")
        if not isinstance(text, str):
            raise ContentError("A text part needs 'text' (a string).", where=where)
        return TextPart(text)
    if kind == "image_url":
        return _image(item.get("image_url"), where, limits)
    if kind == "file":
        return _document(item.get("file"), where, limits)
    raise ContentError(
        f"Unsupported content part type {kind!r}: use 'text', 'image_url' or 'file'.",
        where=where,
    )


def _image(spec: Any, where: str, limits: ContentLimits) -> ImagePart:
    if isinstance(spec, str):
        spec = {"url": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
        raise ContentError("An image_url part needs 'image_url.url'.", where=where)
    detail = spec.get("detail")
    if detail is not None and detail not in DETAILS:
        raise ContentError("'image_url.detail' must be 'auto', 'low' or 'high'.", where=where)
    url: str = spec["url"]
    if url.startswith("data:"):
        media_type, data = _data_uri(url, IMAGE_TYPES, where, limits)
        return ImagePart(media_type, data, detail=detail)
    if url.startswith("https://") and len(url) <= 4096 and " " not in url:
        return ImagePart(url=url, detail=detail)
    raise ContentError(
        "'image_url.url' must be an https:// URL or a data: URI (base64).", where=where
    )


def _document(spec: Any, where: str, limits: ContentLimits) -> DocumentPart:
    if not isinstance(spec, dict):
        raise ContentError("A file part needs 'file'.", where=where)
    if "file_id" in spec and "file_data" not in spec:
        raise ContentError(
            "Uploaded file ids are not supported: send the document inline as "
            "'file.file_data' (a data: URI).",
            where=where,
        )
    file_data = spec.get("file_data")
    if not isinstance(file_data, str):
        raise ContentError("A file part needs 'file.file_data' (a data: URI).", where=where)
    filename = spec.get("filename")
    if filename is not None and (not isinstance(filename, str) or len(filename) > 255):
        raise ContentError("'file.filename' must be a string of up to 255 characters.", where=where)
    media_type, data = _data_uri(file_data, DOCUMENT_TYPES, where, limits)
    return DocumentPart(media_type, data, filename or None)


def _data_uri(
    uri: str, accepted: tuple[str, ...], where: str, limits: ContentLimits
) -> tuple[str, bytes]:
    header, comma, payload = uri.partition(",")
    media_type, _, encoding = header[len("data:") :].partition(";")
    media_type = media_type.strip().lower()
    if not comma or encoding.strip().lower() != "base64":
        raise ContentError("A data: URI must be base64: 'data:<type>;base64,...'.", where=where)
    if media_type not in accepted:
        raise ContentError(
            f"Unsupported media type {media_type!r}: accepted are {', '.join(accepted)}.",
            where=where,
        )
    # Checked before decoding: base64 is 4/3 of the bytes it carries.
    if len(payload) * 3 // 4 > limits.part_bytes + 3:
        raise _too_large(where, limits)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContentError("The data: URI is not valid base64.", where=where) from exc
    if len(data) > limits.part_bytes:
        raise _too_large(where, limits)
    if not _looks_like(media_type, data):
        raise ContentError(f"The data is not {media_type}.", where=where)
    return media_type, data


def _too_large(where: str, limits: ContentLimits) -> ContentError:
    return ContentError(
        f"A content part may hold at most {limits.part_bytes} bytes.",
        where=where,
        type_="content_too_large",
    )


def looks_like(media_type: str, data: bytes) -> bool:
    """Whether `data` starts as `media_type` does (one of IMAGE_TYPES or DOCUMENT_TYPES);
    False for any other type."""
    if media_type == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return any(data.startswith(magic) for magic in _MAGIC.get(media_type, ()))


_looks_like = looks_like


def part_to_openai(part: Part) -> dict[str, Any]:
    """A part in OpenAI's Chat Completions format (the API's own format too)."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        image: dict[str, Any] = {"url": part.url or part.data_uri()}
        if part.detail:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    file: dict[str, Any] = {"file_data": part.data_uri()}
    if part.filename:
        file["filename"] = part.filename
    return {"type": "file", "file": file}


def part_label(part: Part) -> str:
    """What a part is, for messages naming it (`image`, `document`)."""
    return "image" if isinstance(part, ImagePart) else "document"
