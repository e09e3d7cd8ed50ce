"""A small HTTP/1.1 client for the vendor calls on the hot path: keep-alive connections
to one origin, a request written in one piece, a response read as a whole or line by
line (an SSE stream).

`httpx` costs about 2 ms of CPU for one POST (its request and response models, the
connection pool's bookkeeping, anyio's cancel scopes); this client costs a tenth of
that, because it does only what a vendor call needs: no redirects, no cookies, no
compression (it asks for none), no HTTP/2, no proxies. Adapters use it for direct
connections to an operator's endpoint and keep `httpx` for the rest (a proxy from the
environment, a transport of their own such as the guarded one of tenants' connections,
and while tracing is on: see `use`).

Each read has a timeout (`read_timeout`, as httpx's read timeout); connecting has its
own. A request on a kept connection that the server closed meanwhile (before any byte
of an answer) is sent again once on a new connection, as browsers do.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from providers.core.timers import Watch

_LINE_LIMIT = 16 * 1024 * 1024  # one SSE line: a chunk of a long tool call's arguments


_enabled = True


def use(enabled: bool) -> None:
    """Whether adapters may send through this client. A traced process turns it off, so
    that every vendor request is an httpx request, which the tracing instruments."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


class HttpError(Exception):
    """The connection failed: could not connect, or broke before the answer was read."""


class HttpTimeout(HttpError):
    """Connecting or a read took longer than its timeout."""


class _Stale(Exception):
    """A kept connection the server had closed: nothing of the request was answered."""


class Response:
    """A response whose head was read; its body is read by `read` or `aiter_lines`
    (once), and `aclose` hands the connection back when the body was read whole."""

    def __init__(self, connection: _Connection, status: int, headers: dict[str, str]) -> None:
        self._connection = connection
        self.status_code = status
        self.headers = headers
        self._body = _Body(connection.reader, headers, connection.read_timeout, status)

    async def aread(self) -> bytes:
        """The whole body (as httpx's `aread`); the connection is handed back."""
        try:
            return b"".join([chunk async for chunk in self._body.chunks()])
        finally:
            await self.aclose()

    async def aiter_lines(self) -> AsyncIterator[str]:
        """The body's lines, without their line ends (as httpx's `aiter_lines`)."""
        pending = b""
        async for chunk in self._body.chunks():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.rstrip(b"\r").decode("utf-8", "replace")
        if pending:
            yield pending.rstrip(b"\r").decode("utf-8", "replace")

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None  # type: ignore[assignment]
        if connection is not None:
            connection.release(reusable=self._body.done and self._body.reusable)


class _Body:
    """The framing of one response body: Content-Length, chunked, or to the end."""

    def __init__(
        self, reader: asyncio.StreamReader, headers: Mapping[str, str], timeout: float, status: int
    ) -> None:
        self._reader, self._timeout = reader, timeout
        self._watch = Watch()  # one timer for all the body's reads
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self.length = int(length) if length and not self.chunked else None
        no_body = status in (204, 304) or 100 <= status < 200
        if no_body:
            self.length = 0
        self.reusable = (self.chunked or self.length is not None) and headers.get(
            "connection", ""
        ).lower() != "close"
        self.done = False

    async def chunks(self) -> AsyncIterator[bytes]:
        reader = self._reader
        try:
            if self.chunked:
                while True:
                    size_line = await self._io(reader.readuntil(b"\r\n"))
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        await self._skip_trailers()
                        break
                    data = await self._io(reader.readexactly(size + 2))
                    yield data[:-2]
            elif self.length is not None:
                remaining = self.length
                while remaining:
                    data = await self._io(reader.read(min(remaining, 1 << 20)))
                    if not data:
                        raise HttpError("the connection closed before the body's end")
                    remaining -= len(data)
                    yield data
            else:
                while data := await self._io(reader.read(1 << 16)):
                    yield data
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise HttpError(f"the response body broke off: {exc}") from exc
        except OSError as exc:
            raise HttpError(f"the connection broke: {exc}") from exc
        finally:
            self._watch.close()
        self.done = True

    async def _skip_trailers(self) -> None:
        """Read the trailer fields after the last chunk, up to the empty line."""
        line = await self._io(self._reader.readuntil(b"\r\n"))
        while line != b"\r\n":
            line = await self._io(self._reader.readuntil(b"\r\n"))

    async def _io(self, read: Any) -> Any:
        try:
            with self._watch.within(self._timeout):
                return await read
        except TimeoutError:
            if not self._watch.expired:
                raise
            raise HttpTimeout(f"no data for {self._timeout} s") from None


class _Connection:
    def __init__(
        self,
        pool: Http1Pool,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.pool, self.reader, self.writer = pool, reader, writer
        self.read_timeout = pool.read_timeout
        self.reused = False

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def release(self, *, reusable: bool) -> None:
        idle = self.pool.idle
        if reusable and self.usable() and len(idle) < self.pool.max_idle:
            self.reused = True
            idle.append(self)
        else:
            self.writer.close()


class Http1Pool:
    """Keep-alive connections to the origin of `base_url` (http or https)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = 100,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._tls = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._tls else 80)
        default_port = self._port == (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if default_port else f"{host}:{self._port}"
        self._ssl = (ssl_context or ssl.create_default_context()) if self._tls else None
        self._headers = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._targets: dict[str, str | None] = {}
        self.idle: list[_Connection] = []
        self.max_idle = max_idle

    def target(self, url: str) -> str | None:
        """The request target (path and query) of `url`, None when `url` is not on this
        pool's origin; remembered, as a provider calls few URLs."""
        if url in self._targets:
            return self._targets[url]
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        same = tls == self._tls and parts.hostname == self._host and port == self._port
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if len(self._targets) < 1000:
            self._targets[url] = target if same else None
        return target if same else None

    async def post(self, target: str, body: bytes) -> Response:
        """POST `body` to `target` (from `target(url)`); the response once its head
        arrived."""
        head = (
            f"POST {target} HTTP/1.1\r\nHost: {self._host_header}\r\n{self._headers}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        try:
            return await self._exchange(await self._connection(), head, body)
        except _Stale:
            return await self._exchange(await self._connect(), head, body)

    async def _exchange(self, connection: _Connection, head: bytes, body: bytes) -> Response:
        try:
            if len(body) < 65536:
                connection.writer.write(head + body)  # one write for the usual request
            else:  # a large body (images, documents): not copied, and drained
                connection.writer.write(head)
                connection.writer.write(body)
                await connection.writer.drain()
            async with asyncio.timeout(self.read_timeout):
                raw = await connection.reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            connection.writer.close()
            raise HttpTimeout(f"no answer within {self.read_timeout} s") from None
        except (asyncio.IncompleteReadError, OSError) as exc:
            connection.writer.close()
            nothing = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
            if connection.reused and nothing:
                raise _Stale from exc
            raise HttpError(f"the connection broke before the answer: {exc!r}") from exc
        except asyncio.LimitOverrunError as exc:
            connection.writer.close()
            raise HttpError("the answer's head is too large") from exc
        except BaseException:
            connection.writer.close()
            raise
        return _response(connection, raw)

    async def _connection(self) -> _Connection:
        while self.idle:
            connection = self.idle.pop()
            if connection.usable():
                return connection
            connection.writer.close()
        return await self._connect()

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                    limit=_LINE_LIMIT,
                )
        except TimeoutError:
            raise HttpTimeout(f"could not connect within {self.connect_timeout} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise HttpError(f"could not connect: {exc}") from exc
        return _Connection(self, reader, writer)

    async def aclose(self) -> None:
        idle, self.idle = self.idle, []
        for connection in idle:
            connection.writer.close()


def _response(connection: _Connection, raw: bytes) -> Response:
    lines = raw[:-4].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    try:
        status = int(rest[:3])
    except ValueError:
        connection.writer.close()
        raise HttpError(f"not an HTTP status line: {lines[0][:80]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        headers["connection"] = "close"
    return Response(connection, status, headers)
