"""Images and documents of a turn, checked against the provider before anything is
stored or any model is called.

The primary provider must take every kind of part the client sent (a 400 naming the
part otherwise); fallbacks that cannot are left out of the turn. A vendor that takes
images only as bytes (Ollama) gets https:// images fetched here, through the outbound
guard, bounded by CONTENT_PART_MAX_BYTES.
"""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings

from pipeline.spec import ChatSend, TurnSpec
from providers import gateway
from providers.core.base import Capabilities
from providers.core.content import (
    IMAGE_TYPES,
    ContentError,
    DocumentPart,
    ImagePart,
    Part,
    looks_like,
)
from tools import netguard
from tools.errors import ToolError

Located = list[tuple[str, Part]]  # each part with its name in the request


async def prepare(
    spec: TurnSpec,
    target: gateway.Target,
    fallbacks: list[gateway.Target],
    view: gateway.View | None = None,
) -> tuple[TurnSpec, list[gateway.Target]]:
    """The turn's spec with images fetched where the provider needs bytes, and the
    fallbacks that take its parts; raises ContentError for a part the provider cannot take."""
    located = _located(spec)
    if not located:
        return spec, fallbacks
    caps = gateway.capabilities(target.provider, view)
    refusal = _refusal(located, caps, target.provider)
    if refusal is not None:
        raise refusal
    fallbacks = [
        f
        for f in fallbacks
        if _refusal(located, gateway.capabilities(f.provider, view), f.provider) is None
    ]
    if caps is not None and not caps.image_urls:
        spec = await _with_fetched_images(spec)
    return spec, fallbacks


def _located(spec: TurnSpec) -> Located:
    if isinstance(spec.chat, ChatSend):
        return [(f"content[{j}]", p) for j, p in enumerate(spec.chat.parts)]
    return [
        (f"messages[{i}].content[{j}]", p)
        for i, m in enumerate(spec.messages)
        for j, p in enumerate(m.parts)
    ]


def _refusal(located: Located, caps: Capabilities | None, provider: str) -> ContentError | None:
    if caps is None:  # a kind no descriptor describes: its parts go as given
        return None
    for where, part in located:
        if isinstance(part, ImagePart) and not caps.images:
            return ContentError(
                f"Provider {provider!r} does not take images.",
                where=where,
                type_="unsupported_content",
            )
        if isinstance(part, DocumentPart) and not caps.documents:
            return ContentError(
                f"Provider {provider!r} does not take documents.",
                where=where,
                type_="unsupported_content",
            )
    return None


async def _with_fetched_images(spec: TurnSpec) -> TurnSpec:
    if isinstance(spec.chat, ChatSend):
        parts = await _fetched(spec.chat.parts, "content")
        return replace(spec, chat=replace(spec.chat, parts=parts))
    messages = []
    for i, message in enumerate(spec.messages):
        if message.parts:
            parts = await _fetched(message.parts, f"messages[{i}].content")
            message = replace(message, parts=parts)
        messages.append(message)
    return replace(spec, messages=tuple(messages))


async def _fetched(parts: tuple[Part, ...], where: str) -> tuple[Part, ...]:
    out: list[Part] = []
    for j, part in enumerate(parts):
        if isinstance(part, ImagePart) and part.url:
            part = await fetch_image(part, where=f"{where}[{j}]")
        out.append(part)
    return tuple(out)


async def fetch_image(part: ImagePart, *, where: str) -> ImagePart:
    """The image at `part.url`, as bytes; a ContentError if it cannot be had."""
    assert part.url is not None
    policy = netguard.OutboundPolicy(
        allow_private_hosts=tuple(settings.OUTBOUND_ALLOWED_HOSTS),
        timeout_s=settings.OUTBOUND_TIMEOUT,
        max_response_bytes=settings.CONTENT_PART_MAX_BYTES,
        ca_file=settings.OUTBOUND_CA_FILE or None,
    )
    try:
        media_type, data = await netguard.get_bytes(part.url, policy=policy)
    except ToolError as exc:
        raise ContentError(
            f"The image could not be fetched: {exc.message}.",
            where=where,
            type_="image_fetch_failed",
        ) from exc
    if media_type not in IMAGE_TYPES or not looks_like(media_type, data):
        raise ContentError(
            f"The URL did not answer with an image ({', '.join(IMAGE_TYPES)}).",
            where=where,
            type_="image_fetch_failed",
        )
    return ImagePart(media_type, data, detail=part.detail)
