"""Fan-out of chat events to every WebSocket connected to the chat.

The channel layer (Redis-backed when REDIS_URL is set) is only a fan-out: messages are
in the database before their events are sent, so a viewer that misses events can
always read the chat back.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def group_name(chat_id: UUID | str) -> str:
    return f"chat.{chat_id}"


async def publish(
    chat_id: UUID | str, event: str, data: dict[str, Any], *, origin: str | None
) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(
            group_name(chat_id),
            {"type": "chat.event", "event": event, "data": data, "origin": origin},
        )
    except Exception:
        # Viewers are a convenience; the sender's own stream must not fail with them.
        logger.warning("fan-out of %s to chat %s failed", event, chat_id, exc_info=True)
