"""A TCP listener in front of a test server: counts connections, can redirect."""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from http import HTTPStatus


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
