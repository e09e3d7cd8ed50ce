"""Images and documents of chat messages: their files, and their parts as stored.

The bytes live in the `attachments` storage (Django's STORAGES: files on disk by
default, a bucket when configured), one file per chat and content, named
`<subtenant>/<chat>/<sha256>`, with an `Attachment` row. The same bytes sent twice in a
chat are one attachment: its id is derived from the chat and the bytes' SHA-256, so
concurrent sends of one image agree on it without reading the database.

`Message.parts` holds a message's parts in OpenAI's format, each binary replaced by a
reference to its attachment:

    {"type": "text", "text": "..."}
    {"type": "image_url", "image_url": {"url": "https://..."}}            (as sent)
    {"type": "image_url", "image_url": {"detail": "low"}, "attachment": REF}
    {"type": "file", "file": {"filename": "a.pdf"}, "attachment": REF}

where REF is `{"id", "media_type", "size", "sha256"}`. The API shows a reference as a
URL of ours (`parts_to_api`); the history reads the bytes back (`read_parts`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from chats import selectors
from chats.models import Attachment, Chat
from providers.core import types
from providers.core.content import DocumentPart, ImagePart, Part, TextPart, part_to_openai

logger = logging.getLogger(__name__)

_ID_NAMESPACE = uuid.UUID("5b0c7f4e-2f7a-4d8e-9a51-7c1f0e3d6a42")


def storage() -> Storage:
    return storages["attachments"]


def attachment_id(chat_id: uuid.UUID | str, sha256: str) -> uuid.UUID:
    return uuid.uuid5(_ID_NAMESPACE, f"{chat_id}/{sha256}")


def attachment_url(chat_id: uuid.UUID | str, attachment_id: uuid.UUID | str) -> str:
    return f"/api/v1/chats/{chat_id}/attachments/{attachment_id}"


def store(*, chat: Chat, parts: Sequence[Part]) -> tuple[list[dict[str, Any]], list[Attachment]]:
    """Write the files of `parts` (those the storage lacks); the parts as a message
    stores them, and the Attachment rows to insert with it (`messages_append`).

    Files are written before the rows' transaction: when it fails, a file may stay
    without a row. It is named by its bytes, so the next send of them reuses it."""
    stored: list[dict[str, Any]] = []
    rows: dict[str, Attachment] = {}
    for part in parts:
        if isinstance(part, TextPart) or (isinstance(part, ImagePart) and part.data is None):
            stored.append(part_to_openai(part))
            continue
        sha256 = part.sha256()
        row = rows.get(sha256)
        if row is None:
            row = rows[sha256] = _write(chat, part, sha256)
        stored.append(_reference(part, row))
    return stored, list(rows.values())


def _write(chat: Chat, part: ImagePart | DocumentPart, sha256: str) -> Attachment:
    data = part.data or b""
    name = f"{chat.subtenant_id}/{chat.pk}/{sha256}"
    files = storage()
    if not files.exists(name):
        saved = files.save(name, ContentFile(data))
        if saved != name:  # another send wrote the same bytes meanwhile: theirs is kept
            files.delete(saved)
    return Attachment(
        id=attachment_id(chat.pk, sha256),
        subtenant_id=chat.subtenant_id,
        chat_id=chat.pk,
        sha256=sha256,
        media_type=part.media_type,
        size=len(data),
        filename=(part.filename or "") if isinstance(part, DocumentPart) else "",
        storage_name=name,
    )


def _reference(part: ImagePart | DocumentPart, row: Attachment) -> dict[str, Any]:
    ref = {"id": str(row.id), "media_type": row.media_type, "size": row.size, "sha256": row.sha256}
    if isinstance(part, ImagePart):
        image = {"detail": part.detail} if part.detail else {}
        return {"type": "image_url", "image_url": image, "attachment": ref}
    file = {"filename": part.filename} if part.filename else {}
    return {"type": "file", "file": file, "attachment": ref}


def parts_to_api(chat_id: uuid.UUID | str, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored parts as the API shows them: each binary's URL (`image_url.url`,
    `file.url`, both also in `attachment.url`) is the attachment's endpoint."""
    shown = []
    for part in stored:
        ref = part.get("attachment")
        if ref is None:
            shown.append(part)
            continue
        url = attachment_url(chat_id, ref["id"])
        key = "image_url" if part["type"] == "image_url" else "file"
        shown.append(
            {
                "type": part["type"],
                key: {"url": url, **part.get(key, {})},
                "attachment": {**ref, "url": url},
            }
        )
    return shown


@dataclass(frozen=True, slots=True)
class StoredPart:
    """A binary part of the history whose bytes are not read yet (see `read_parts`)."""

    kind: str  # "image_url" | "file"
    attachment_id: str
    media_type: str
    size: int
    detail: str | None = None
    filename: str | None = None


def parts_from_stored(stored: list[dict[str, Any]]) -> tuple[Any, ...]:
    """Stored parts as normalized ones, binaries as StoredPart until `read_parts`."""
    parts: list[Any] = []
    for part in stored:
        ref = part.get("attachment")
        if part["type"] == "text":
            parts.append(TextPart(part["text"]))
        elif ref is None:
            image = part["image_url"]
            parts.append(ImagePart(url=image["url"], detail=image.get("detail")))
        else:
            spec = part.get("image_url") or part.get("file") or {}
            parts.append(
                StoredPart(
                    kind=part["type"],
                    attachment_id=ref["id"],
                    media_type=ref["media_type"],
                    size=ref["size"],
                    detail=spec.get("detail"),
                    filename=spec.get("filename"),
                )
            )
    return tuple(parts)


def read_parts(*, chat_id: uuid.UUID | str, messages: list[types.Message]) -> list[types.Message]:
    """The messages with the bytes of their StoredParts read from storage (one query for
    their files' names). An attachment that is gone becomes a note in the text."""
    ids = {p.attachment_id for m in messages for p in m.parts if isinstance(p, StoredPart)}
    if not ids:
        return messages
    names = selectors.attachment_storage_names(chat_id=chat_id, attachment_ids=ids)
    files = storage()
    read: dict[str, bytes | None] = {}
    for ref in ids:
        name, read[ref] = names.get(uuid.UUID(ref)), None
        try:
            if name is not None:
                with files.open(name, "rb") as file:
                    read[ref] = file.read()
        except FileNotFoundError:
            pass
        if read[ref] is None:
            logger.warning("Attachment %s of chat %s is unavailable", ref, chat_id)
    return [
        replace(m, parts=tuple(_loaded(p, read) for p in m.parts))
        if any(isinstance(p, StoredPart) for p in m.parts)
        else m
        for m in messages
    ]


def _loaded(part: Any, read: dict[str, bytes | None]) -> Part:
    if not isinstance(part, StoredPart):
        return part
    data = read[part.attachment_id]
    if data is None:
        label = "image" if part.kind == "image_url" else "document"
        return TextPart(f"[{label} no longer available]")
    if part.kind == "image_url":
        return ImagePart(part.media_type, data, detail=part.detail)
    return DocumentPart(part.media_type, data, part.filename)


def read(attachment: Attachment) -> bytes:
    with storage().open(attachment.storage_name, "rb") as file:
        return file.read()
