"""A real MCP server for tests and examples, over stdio, streamable HTTP or WebSocket.

Tools: ``add(a, b)``, ``echo(text)``, ``search(query)`` (answers with the server's
``--name``, so two servers with the same tool can be told apart), ``fail()`` (always
raises), ``sleep(seconds)``, ``media()`` (text, an image ``TINY_PNG``, an embedded PDF
``TINY_PDF``, a text resource and a resource link), and diagnostics:
``handshakes_seen()`` (initialize and server/discover requests this process has seen),
``pid()``, ``env_keys()``.

Run it by hand::

    python -m tools.mcp.testing --transport stdio
    python -m tools.mcp.testing --transport streamable_http --port 8765 [--token secret]
    python -m tools.mcp.testing --transport websocket --port 8766 [--token secret]

HTTP serves ``http://127.0.0.1:<port>/mcp``, WebSocket ``ws://127.0.0.1:<port>/mcp``
(subprotocol ``mcp``), legacy SSE (``--transport sse``) ``http://127.0.0.1:<port>/sse``.
With ``--token`` the network servers answer 401 unless the request carries
``Authorization: Bearer <token>``. In tests, ``McpTestServer`` runs one in a
subprocess that can be stopped and restarted on the same port, and ``stdio_config``
builds a config that spawns one. ``TcpFront`` is a TCP listener in front of a server
that counts connections and can answer every request with an HTTP redirect instead.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import select
import socket
import socketserver
import subprocess
import sys
import threading
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal

import anyio
import mcp_types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage

from providers.testing.media import png
from tools.mcp.config import McpServerConfig
from tools.mcp.websocket import SUBPROTOCOL, encode_message, parse_frame

REPO_ROOT = Path(__file__).resolve().parents[2]
HandshakeMethods = ("initialize", "server/discover")


def _pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 20 20 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 50] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


# A real 2x2 PNG and a real one-page PDF, as ``media()`` returns them.
TINY_PNG = png(2, 2, (220, 40, 40))
TINY_PDF = _pdf("Q3 report")


def build_server(name: str = "test") -> MCPServer:
    handshakes = 0

    async def count_handshakes(ctx: Any, call_next: Any) -> Any:
        nonlocal handshakes
        if ctx.method in HandshakeMethods:
            handshakes += 1
        return await call_next(ctx)

    server = MCPServer(name, log_level="WARNING", middleware=[count_handshakes])

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def search(query: str) -> str:
        """Pretend to search; the answer names the server."""
        return f"{name} results for {query}"

    @server.tool()
    def fail() -> str:
        """Always raises."""
        raise RuntimeError("this tool always fails")

    @server.tool()
    async def sleep(seconds: float) -> str:
        """Wait, then answer (for timeout tests)."""
        await anyio.sleep(seconds)
        return "done"

    @server.tool()
    def media() -> mcp_types.CallToolResult:
        """A chart, the report behind it, notes and a link to the raw data."""
        return mcp_types.CallToolResult(
            content=[
                mcp_types.TextContent(type="text", text="Q3 sales: chart and report."),
                mcp_types.ImageContent(
                    type="image", data=base64.b64encode(TINY_PNG).decode(), mime_type="image/png"
                ),
                mcp_types.EmbeddedResource(
                    type="resource",
                    resource=mcp_types.BlobResourceContents(
                        uri="file:///reports/q3.pdf",
                        mime_type="application/pdf",
                        blob=base64.b64encode(TINY_PDF).decode(),
                    ),
                ),
                mcp_types.EmbeddedResource(
                    type="resource",
                    resource=mcp_types.TextResourceContents(
                        uri="file:///notes/q3.txt", mime_type="text/plain", text="Up 12% on Q2."
                    ),
                ),
                mcp_types.ResourceLink(
                    type="resource_link",
                    uri="https://data.example.com/q3.csv",
                    name="q3.csv",
                    mime_type="text/csv",
                ),
            ]
        )

    @server.tool()
    def handshakes_seen() -> int:
        """How many initialize/server-discover requests this process has answered."""
        return handshakes

    @server.tool()
    def pid() -> int:
        """This server's process id."""
        return os.getpid()

    @server.tool()
    def env_keys() -> list[str]:
        """Names of the environment variables this server was started with."""
        return sorted(os.environ)

    return server


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


class TcpFront:
    """A TCP listener on ``host`` that forwards each connection to ``target_port`` on
    127.0.0.1 (or, without one, reads the request head and hangs up), keeping the
    request head of every connection in ``heads``.

    ``redirect(status, location)`` makes it answer each new connection's first request
    with that redirect instead (``only_path``: only a request for that path; others are
    forwarded): a server that points clients elsewhere. ``forward()`` goes back to
    forwarding. Plain HTTP/WebSocket only: it reads the head before forwarding.
    """

    def __init__(
        self, target_port: int | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.target_port = target_port
        self.heads: list[bytes] = []
        self._redirect: tuple[int, str, str | None] | None = None
        front = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                front._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server((host, port), Handler)
        self.host, self.port = self._server.server_address[:2]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def connections(self) -> list[str]:
        """The first request line of each connection received."""
        return [head.split(b"\r\n", 1)[0].decode("latin-1") for head in self.heads]

    def url(self, scheme: str, path: str) -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    def redirect(self, status: int, location: str, *, only_path: str | None = None) -> None:
        self._redirect = (status, location, only_path)

    def forward(self) -> None:
        self._redirect = None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> TcpFront:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(10)
        redirect = self._redirect
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = client.recv(4096)
                if not chunk:
                    break
                head += chunk
        except OSError:
            pass
        self.heads.append(head)
        if self.target_port is None or not head:
            return
        if redirect is not None:
            status, location, only_path = redirect
            path = [*head.split(b" "), b"", b""][1].decode("latin-1")
            if only_path is None or path.split("?")[0] == only_path:
                answer = (
                    f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nLocation: {location}\r\n"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                client.sendall(answer.encode("latin-1"))
                return
        with socket.create_connection(("127.0.0.1", self.target_port), timeout=10) as upstream:
            upstream.sendall(head)
            _pump(client, upstream)


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {a: b, b: a}
    try:
        while True:
            ready, _, _ = select.select(list(peers), [], [], 60)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)
    except OSError:
        return


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stdio_config(
    name: str = "test", *, server_name: str | None = None, **kw: Any
) -> McpServerConfig:
    """A config that spawns this module's server over stdio (with this interpreter)."""
    env = {"PYTHONPATH": str(REPO_ROOT), **(kw.pop("env", None) or {})}
    return McpServerConfig(
        name=name,
        transport="stdio",
        command=sys.executable,
        args=("-m", "tools.mcp.testing", "--transport", "stdio", "--name", server_name or name),
        env=env,
        **kw,
    )


class McpTestServer:
    """The test server in a subprocess on a fixed port; ``stop()`` then ``start()``
    brings it back on the same port, as a restarted real server would."""

    def __init__(
        self,
        transport: Literal["streamable_http", "websocket", "sse"] = "streamable_http",
        *,
        name: str = "test",
        token: str | None = None,
        port: int | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        """``tls``: (certificate file, key file) to serve ``wss://`` (WebSocket only)."""
        self.transport = transport
        self.name = name
        self.token = token
        self.tls = tls
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.transport == "sse":
            return f"http://127.0.0.1:{self.port}/sse"
        scheme = ("wss" if self.tls else "ws") if self.transport == "websocket" else "http"
        return f"{scheme}://127.0.0.1:{self.port}/mcp"

    def config(self, name: str | None = None, **kw: Any) -> McpServerConfig:
        return McpServerConfig(name=name or self.name, transport=self.transport, url=self.url, **kw)

    def start(self, timeout_s: float = 20) -> McpTestServer:
        cmd = [sys.executable, "-m", "tools.mcp.testing", "--transport", self.transport]
        cmd += ["--port", str(self.port), "--name", self.name]
        if self.token:
            cmd += ["--token", self.token]
        if self.tls:
            cmd += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.process = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)  # noqa: S603
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"MCP test server exited early:\n{err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"MCP test server did not listen on port {self.port}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # A hard kill, like a crash: open connections die without a goodbye.
        process.kill()
        process.wait(10)
        if process.stderr:
            process.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> McpTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
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


if __name__ == "__main__":
    main()
