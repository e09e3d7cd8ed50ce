"""A real MCP server for tests and examples, over stdio, streamable HTTP or WebSocket.

Run it by hand::

    python -m tools.mcp.testing --transport stdio
    python -m tools.mcp.testing --transport streamable_http --port 8765 [--token secret]
    python -m tools.mcp.testing --transport websocket --port 8766 [--token secret]

HTTP serves ``http://127.0.0.1:<port>/mcp``, WebSocket ``ws://127.0.0.1:<port>/mcp``
(subprotocol ``mcp``), legacy SSE (``--transport sse``) ``http://127.0.0.1:<port>/sse``.
With ``--token`` the network servers answer 401 unless the request carries
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from http import HTTPStatus
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage

from tools.mcp.testing.server import build_server
from tools.mcp.websocket import SUBPROTOCOL, encode_message, parse_frame


def _bearer_ok(header: str | None, token: str | None) -> bool:
    return token is None or header == f"Bearer {token}"


def _http_app(server: MCPServer, token: str | None, *, sse: bool = False) -> Any:
    app = server.sse_app(sse_path="/sse") if sse else server.streamable_http_app()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"").decode() or None
            if not _bearer_ok(auth, token):
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    return guarded


async def _serve_websocket(
    server: MCPServer, host: str, port: int, token: str | None, tls: tuple[str, str] | None = None
) -> None:
    import ssl

    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed
    from websockets.http11 import Request

    lowlevel = server._lowlevel_server

    def check(connection: ServerConnection, request: Request) -> Any:
        if not _bearer_ok(request.headers.get("Authorization"), token):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "unauthorized\n")
        offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
        if SUBPROTOCOL not in [p.strip() for p in offered.split(",")]:
            return connection.respond(HTTPStatus.BAD_REQUEST, "subprotocol 'mcp' required\n")
        return None

    async def handle(ws: ServerConnection) -> None:
        read_writer: MemoryObjectSendStream[SessionMessage | Exception]
        read_stream: MemoryObjectReceiveStream[SessionMessage | Exception]
        read_writer, read_stream = anyio.create_memory_object_stream(0)
        write_stream: MemoryObjectSendStream[SessionMessage]
        write_reader: MemoryObjectReceiveStream[SessionMessage]
        write_stream, write_reader = anyio.create_memory_object_stream(0)

        async def reader() -> None:
            async with read_writer:
                try:
                    async for frame in ws:
                        await read_writer.send(parse_frame(frame))
                except ConnectionClosed:
                    pass

        async def writer() -> None:
            async with write_reader:
                try:
                    async for message in write_reader:
                        await ws.send(encode_message(message))
                except ConnectionClosed:
                    pass

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
            # One server session per socket, ending when the client goes away.
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
            tg.cancel_scope.cancel()

    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
    async with serve(
        handle, host, port, subprotocols=[SUBPROTOCOL], process_request=check, ssl=context
    ) as ws:
        await ws.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """Run the test server with the transport and options given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    transports = ["stdio", "streamable_http", "websocket", "sse"]
    parser.add_argument("--transport", choices=transports, default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--name", default="test")
    parser.add_argument("--token", default=None, help="require Authorization: Bearer <token>")
    parser.add_argument("--tls-cert", default=None, help="serve wss:// (websocket only)")
    parser.add_argument("--tls-key", default=None)
    args = parser.parse_args(argv)
    server = build_server(args.name)
    # fail() raising is the point; its traceback in every test run is not.
    logging.getLogger("mcp.server.mcpserver.server").setLevel(logging.CRITICAL)
    if args.transport == "stdio":
        server.run("stdio")
    elif args.transport == "websocket":
        tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
        asyncio.run(_serve_websocket(server, args.host, args.port, args.token, tls))
    else:
        import uvicorn

        app = _http_app(server, args.token, sse=args.transport == "sse")
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
