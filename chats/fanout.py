"""Fan-out of chat events to every WebSocket connected to the chat.

The channel layer (Redis-backed when REDIS_URL is set) is only a fan-out: messages are
in the database before their events are sent, so a viewer that misses events can
always read the chat back. It is also allowed to be down: sockets keep working within
their process (each gets its own send's events directly, not through the layer), and
fan-out resumes by itself when the layer is back.

While the layer is unreachable this process skips fan-out (no stream waits on it), one
background probe retries with a growing delay, and once the layer answers again every
socket of the process joins its chat's group again: a restarted Redis has forgotten
all memberships. One warning is logged when the layer goes away, one line when it is
back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from uuid import UUID

from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

# A layer call that takes longer is given up and the layer treated as down, so a hung
# Redis stalls a stream at most this long, once.
CALL_TIMEOUT_S = 2.0
RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0
_PROBE_GROUP, _PROBE_CHANNEL = "fanout.probe", "fanout.probe!"


def group_name(chat_id: UUID | str) -> str:
    return f"chat.{chat_id}"


class _Link:
    """This process's view of the channel layer and the groups its sockets are in."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.members: dict[str, str] = {}  # channel name -> group
        self.probe: asyncio.Task | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, action: str, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.warning(
                "channel layer unreachable (%s: %s): chat sockets keep working in this "
                "process; fan-out to other processes resumes when it is back",
                action,
                exc.__class__.__name__,
            )
        self._ensure_probe()

    def recovered(self) -> None:
        if self.down_since is not None:
            logger.info(
                "channel layer reachable again after %.1fs: %d sockets rejoined their chats",
                time.monotonic() - self.down_since,
                len(self.members),
            )
            self.down_since = None

    def _ensure_probe(self) -> None:
        loop = asyncio.get_running_loop()
        if self.probe is None or self.probe.done() or self.probe.get_loop() is not loop:
            self.probe = loop.create_task(self._probe(), name="channel-layer-probe")

    async def _probe(self) -> None:
        delay = RETRY_MIN_S
        while self.down:
            await asyncio.sleep(delay)
            try:
                await _rejoin_all()
            except Exception:  # still down: try again later
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            self.recovered()

    async def wait_up(self) -> None:
        while self.down:
            self._ensure_probe()
            assert self.probe is not None
            await asyncio.shield(self.probe)


_link = _Link()


async def _call(coro: Any) -> None:
    async with asyncio.timeout(CALL_TIMEOUT_S):
        await coro


async def _rejoin_all() -> None:
    layer = get_channel_layer()
    members = list(_link.members.items())
    if not members:  # nothing to rejoin: a harmless call tells whether the layer answers
        await _call(layer.group_discard(_PROBE_GROUP, _PROBE_CHANNEL))
    for channel, group in members:
        if _link.members.get(channel) == group:
            await _call(layer.group_add(group, channel))


async def join(group: str, channel: str) -> None:
    """Put a socket's channel in its chat's group; never raises (see the module)."""
    _link.members[channel] = group
    if _link.down:
        return  # the probe adds it once the layer is back
    try:
        await _call(get_channel_layer().group_add(group, channel))
    except Exception as exc:
        _link.failed("joining a chat", exc)


async def leave(group: str, channel: str) -> None:
    _link.members.pop(channel, None)
    if _link.down:
        return  # a restarted layer has forgotten it anyway; otherwise it expires
    try:
        await _call(get_channel_layer().group_discard(group, channel))
    except Exception as exc:
        _link.failed("leaving a chat", exc)


async def receive(channel: str) -> dict[str, Any]:
    """The next layer message for a socket's channel, waiting out layer outages."""
    layer = get_channel_layer()
    delay = 0.0  # grows while receiving keeps failing although the layer answers
    while True:
        await _link.wait_up()
        try:
            return await layer.receive(channel)
        except Exception as exc:
            _link.failed("receiving", exc)
        delay = min(max(delay * 2, RETRY_MIN_S), RETRY_MAX_S)
        await asyncio.sleep(delay)


async def publish(
    chat_id: UUID | str, event: str, data: dict[str, Any], *, origin: str | None
) -> None:
    """Send one event to the chat's sockets in every process; never raises."""
    layer = get_channel_layer()
    if layer is None or _link.down:
        return
    group = group_name(chat_id)
    if isinstance(layer, InMemoryChannelLayer) and group not in layer.groups:
        return  # a layer of this process only, and no socket of it watches the chat
    try:
        await _call(
            layer.group_send(
                group,
                {"type": "chat.event", "event": event, "data": data, "origin": origin},
            )
        )
    except Exception as exc:
        # Viewers are a convenience; the sender's own stream must not fail with them.
        _link.failed(f"fanning out {event}", exc)
