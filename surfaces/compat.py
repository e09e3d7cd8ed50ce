"""What the vendor-compatible surfaces (`/v1/chat/completions`, `/v1/messages`) share:
the view base that answers every error in its vendor's shape, the server-side tools
they offer, a turn collected into its completion, and keepalives for their streams."""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, TypeVar

from rest_framework.response import Response

import pipeline
from llmwrapper.async_views import AsyncAPIView
from llmwrapper.renderers import STREAM_RENDERERS

T = TypeVar("T")
_END = object()


# An async view of a vendor-compatible surface: whatever goes wrong (DRF's authentication
# and validation included) is answered by `error_response`, in the vendor's error shape,
# so the vendor's SDK raises its own exception types. (A comment, not a docstring: the
# schema would show a view's docstring as its operations' description.)
class CompatView(AsyncAPIView, metaclass=abc.ABCMeta):
    renderer_classes = STREAM_RENDERERS

    @abc.abstractmethod
    def error_response(self, exc: Exception) -> Response:
        """`exc` answered in the vendor's error shape."""

    def handle_exception(self, exc: Exception) -> Response:
        return self.error_response(exc)


def server_tools(value: bool | list[str] | None) -> bool | list[str] | None:
    """A request's `server_tools` as `TurnSpec.server_tools`: off unless asked for, since
    clients of a vendor's API expect only their own tools; true offers all of them, a
    list of names those."""
    selection = False if value is None else value
    return None if selection is True else selection


async def completed(turn: pipeline.Turn) -> pipeline.Completed:
    """Run a turn nobody streams to its end; a failure raises its exception."""
    done: pipeline.Completed | None = None
    async with aclosing(turn.events(streaming=False)) as events:
        async for event in events:
            if isinstance(event, pipeline.Failed):
                raise event.error.exc
            if isinstance(event, pipeline.Completed):
                done = event
    assert done is not None
    return done


async def with_keepalives(items: AsyncIterator[T], interval: float) -> AsyncIterator[T | None]:
    """`items`, with a None whenever `interval` seconds pass without one, for a stream
    to send its keepalive then (proxies and clients drop connections that stay silent).

    Each item is awaited in a task of its own, so waiting can time out without
    cancelling it; closing this closes `items`.
    """
    pending: asyncio.Task[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.create_task(_next(items))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield None
                continue
            item, pending = pending.result(), None
            if item is _END:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose: Any = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()


async def _next(items: AsyncIterator[T]) -> Any:
    try:
        return await anext(items)
    except StopAsyncIteration:
        return _END
