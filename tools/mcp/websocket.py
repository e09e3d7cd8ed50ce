"""MCP over WebSocket, client side (the 2.x SDK ships none).

Wire format, as in the 1.x SDK and other implementations: the client offers the
``mcp`` subprotocol (``Sec-WebSocket-Protocol: mcp``) and every JSON-RPC message is one
text frame. ``websocket_client`` yields the same pair of streams the SDK's stdio and
streamable-HTTP transports yield, so ``ClientSession`` and ``mcp.Client`` run over it
unchanged: ``async with Client(websocket_client(url)) as client: ...``.

Outbound rules, as for the HTTP transports: a redirect answer to the upgrade is never
followed (the library would follow up to 10, to any address, with our headers), proxy
variables from the environment are ignored (a proxy would resolve the name, not us),
and with ``addresses`` the TCP connection goes to those already vetted addresses while
the URL's host name stays in the Host header and the TLS SNI/certificate check.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client._transport import TransportStreams
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

logger = logging.getLogger(__name__)

SUBPROTOCOL = Subprotocol("mcp")
# Tool results can be large (file contents, search results); 1 MiB, the library's
# default, is too tight.
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
REDIRECT_STATUSES = frozenset({300, 301, 302, 303, 307, 308})


class WebSocketHandshakeError(ConnectionError):
    """The server refused the upgrade or did not agree to speak ``mcp``."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _NoRedirectConnect(connect):
    """``connect`` that never follows a redirect: its target was never vetted."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def parse_frame(frame: str | bytes) -> SessionMessage | Exception:
    """One frame as a message, or the parse error as a value for the session to surface
    (a single bad frame should not end the connection)."""
    try:
        return SessionMessage(mcp_types.jsonrpc_message_adapter.validate_json(frame, by_name=False))
    except ValidationError as exc:
        return exc


def encode_message(message: SessionMessage) -> str:
    return message.message.model_dump_json(by_alias=True, exclude_unset=True)


async def _open(
    url: str,
    options: dict[str, Any],
    addresses: Sequence[str] | None,
) -> tuple[_NoRedirectConnect, ClientConnection]:
    """Open the connection, to each vetted address in turn when given."""
    last_error: OSError | None = None
    for address in list(addresses or ()) or [None]:
        # host= only moves the TCP connection; the URI's name is kept for the Host
        # header and, on wss, for SNI and the certificate check.
        pinned = {"host": address} if address else {}
        websocket_cm = _NoRedirectConnect(url, proxy=None, **options, **pinned)
        try:
            return websocket_cm, await websocket_cm.__aenter__()
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in REDIRECT_STATUSES:
                raise WebSocketHandshakeError(
                    f"server answered the WebSocket upgrade with a redirect (HTTP {status}); "
                    "redirects are not followed",
                    status=status,
                ) from None
            raise WebSocketHandshakeError(
                f"server refused the WebSocket upgrade (HTTP {status})", status=status
            ) from None
        except TimeoutError:
            raise
        except OSError as exc:  # refused or unreachable: the next address may answer
            last_error = exc
    assert last_error is not None
    raise last_error


def _connect_options(
    headers: Mapping[str, str] | None, *, timeout: float, max_message_bytes: int
) -> dict[str, Any]:
    return {
        "subprotocols": [SUBPROTOCOL],
        "additional_headers": dict(headers or {}),
        "open_timeout": timeout,
        "max_size": max_message_bytes,
        # An MCP session idles between tool calls for minutes; keepalive pings find a
        # dead peer before the next call has to.
        "ping_interval": 20,
        "ping_timeout": 20,
        "close_timeout": 2,
    }


@asynccontextmanager
async def _message_streams(ws: ClientConnection) -> AsyncIterator[TransportStreams]:
    """The session's pair of streams, fed from and drained into the open socket."""
    read_writer: MemoryObjectSendStream[SessionMessage | Exception]
    read_stream: MemoryObjectReceiveStream[SessionMessage | Exception]
    read_writer, read_stream = anyio.create_memory_object_stream(0)
    write_stream: MemoryObjectSendStream[SessionMessage]
    write_reader: MemoryObjectReceiveStream[SessionMessage]
    write_stream, write_reader = anyio.create_memory_object_stream(0)

    async def reader() -> None:
        # Closing read_writer (on any exit) is how the session learns the socket is
        # gone: its pending requests then fail with "connection closed".
        async with read_writer:
            # ConnectionClosed: the server hung up; Closed/BrokenResource: the session
            # went away first.
            with contextlib.suppress(
                ConnectionClosed, anyio.ClosedResourceError, anyio.BrokenResourceError
            ):
                async for frame in ws:
                    await read_writer.send(parse_frame(frame))

    async def writer() -> None:
        async with write_reader:
            try:
                async for message in write_reader:
                    await ws.send(encode_message(message))
            except ConnectionClosed:
                # Unblock the session instead of letting requests wait forever.
                await read_writer.aclose()

    async with read_stream, write_stream, anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        try:
            yield read_stream, write_stream
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def websocket_client(
    url: str,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 - bounds the opening handshake only
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    addresses: Sequence[str] | None = None,
) -> AsyncIterator[TransportStreams]:
    """Connect to a ``ws://`` or ``wss://`` MCP endpoint.

    ``timeout`` bounds the opening handshake. ``addresses`` (vetted IPs of the URL's
    host) pins the connection to them instead of resolving the host again. Raises
    ``WebSocketHandshakeError`` when the server answers the upgrade with an error or a
    redirect status or without the ``mcp`` subprotocol, and ``OSError`` when it cannot
    be reached.
    """
    options = _connect_options(headers, timeout=timeout, max_message_bytes=max_message_bytes)
    websocket_cm, ws = await _open(url, options, addresses)
    try:
        if ws.subprotocol != SUBPROTOCOL:
            raise WebSocketHandshakeError("server did not accept the 'mcp' WebSocket subprotocol")
        async with _message_streams(ws) as streams:
            yield streams
    finally:
        # Shielded: the close handshake must run even when the caller is being cancelled,
        # or the server keeps a half-open session.
        with anyio.CancelScope(shield=True):
            try:
                await websocket_cm.__aexit__(None, None, None)
            except Exception:  # the socket may already be broken; nothing left to do
                logger.debug("closing MCP WebSocket failed", exc_info=True)
