"""A minimal HTTP/1.1 server on asyncio, run in a background thread, for fake vendors.

Written on raw asyncio streams rather than an ASGI server so a scripted response can do
what real upstreams do on a bad day: stall before answering, or drop the connection in
the middle of a chunked body. It keeps connections alive, serves requests concurrently,
and does nothing per request beyond parsing, recording and answering.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Self

_MAX_HEAD = 64 * 1024


@dataclass
class Script:
    """One scripted answer; see `FakeServer.enqueue` for the meaning of each field."""

    text: str | None = None
    tool_calls: list[dict] | None = None
    chunks: int | None = None
    status: int = 200
    error_message: str | None = None
    error_type: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    cut_after_chunks: int | None = None
    error_after_chunks: int | None = None
    end_without_finish: bool = False
    finish_reason: str | None = None
    usage: tuple[int, int] | None = None
    drip: float = 0.0
    drip_after_chunks: int = 0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None

    @property
    def json(self) -> Any:
        return self.body


@dataclass
class Response:
    """What a handler writes: a whole JSON body, or a stream of chunks."""

    writer: asyncio.StreamWriter
    keep_alive: bool = True
    _streaming: bool = field(default=False, repr=False)

    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if not self.keep_alive:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.send_bytes(status, body, "application/json", headers)

    def send_bytes(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        head = {"content-type": content_type, "content-length": str(len(body)), **(headers or {})}
        self.writer.write(self._head(status, head) + body)

    def start_stream(self, content_type: str, headers: dict[str, str] | None = None) -> None:
        head = {"content-type": content_type, "transfer-encoding": "chunked", **(headers or {})}
        self.writer.write(self._head(200, head))
        self._streaming = True

    async def send_chunk(self, data: bytes) -> None:
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self.writer.drain()

    async def drip_chunks(self, data: bytes, pause: float) -> None:
        """Stream `data` one byte per chunk, `pause` seconds apart."""
        for index in range(len(data)):
            await asyncio.sleep(pause)
            await self.send_chunk(data[index : index + 1])

    async def send_dripped(
        self, status: int, payload: Any, pause: float, headers: dict[str, str] | None = None
    ) -> None:
        """A whole JSON body with its length announced, sent one byte at a time."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        head = {"content-type": "application/json", "content-length": str(len(body))}
        self.writer.write(self._head(status, {**head, **(headers or {})}))
        await self.writer.drain()
        self._streaming = True
        for index in range(len(body)):
            await asyncio.sleep(pause)
            self.writer.write(body[index : index + 1])
            await self.writer.drain()
        self._streaming = False

    def end_stream(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        self._streaming = False

    async def cut(self) -> None:
        """Drop the connection mid-body, as a crashed upstream or proxy would."""
        await self.writer.drain()
        self.keep_alive = False
        self.writer.close()


class FakeServer:
    """Base of the fake vendors: a script queue, a request log and the HTTP plumbing.

    Usable as `with Fake() as fake:` or `async with Fake() as fake:`; `fake.url` is the
    server root, `fake.base_url` what to hand the vendor's SDK.
    """

    vendor = "generic"
    default_models: tuple[str, ...] = ("fake-model",)
    embed_path = ""  # the vendor's embeddings route, when the fake serves one

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        max_recorded: int | None = None,
    ):
        self.host = host
        self.port = port
        self.api_key = api_key  # when set, requests with another key get a 401
        self.models: list[str] = list(self.default_models)
        # Everything is kept for tests; a long benchmark run keeps only the latest ones.
        self.requests: list[RecordedRequest] | collections.deque[RecordedRequest] = (
            [] if max_recorded is None else collections.deque(maxlen=max_recorded)
        )
        self._scripts: collections.deque[Script] = collections.deque()
        # Streams the client abandoned midway (it closed the connection before the end).
        self.aborted_streams = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- scripting -----------------------------------------------------------------

    def enqueue(self, **options: Any) -> Self:
        """Queue one answer for the next chat request (others get an echo answer).

        - text, chunks: the answer and into how many stream pieces it is split;
          tool_calls: [{"name", "arguments", "id"?}]; usage: (input, output) tokens;
          finish_reason: a vendor-native value, e.g. "length" or "max_tokens".
        - status (with error_message, error_type, retry_after): answer with that error.
        - delay: seconds before the headers; chunk_delay: before each stream event.
        - drip: send the body one byte at a time, this many seconds apart (a vendor so
          slow that every socket read gets data, but no whole event arrives for long);
          drip_after_chunks: stream N text/tool-call pieces normally first.
        - cut_after_chunks: drop the connection once N text/tool-call pieces were sent
          (0 = before any); end_without_finish: end the body cleanly without the final
          events; error_after_chunks: send the vendor's in-stream error event after N
          pieces (error_message, error_type).
        Embedding requests take the next script too: status (with error_message,
        error_type, retry_after), delay, and usage (its input count) apply to them.
        Unknown options raise TypeError, so a typo cannot silently script nothing.
        """
        self._scripts.append(Script(**options))
        return self

    def clear(self) -> None:
        self._scripts.clear()
        self.requests.clear()

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path != self.embed_path]

    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == self.embed_path]

    def next_script(self) -> Script | None:
        try:
            return self._scripts.popleft()
        except IndexError:
            return None

    # -- lifecycle -----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url

    def start(self) -> Self:
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = _new_loop()

        def run() -> None:
            loop = self._loop
            assert loop is not None
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-{self.vendor}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, backlog=2048, limit=_MAX_HEAD
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- HTTP ----------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        response: Response | None = None
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                response = Response(writer)
                if request.headers.get("connection", "").lower() == "close":
                    response.keep_alive = False
                await self.handle(request, response)
                if not response.keep_alive:
                    break
                await writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            # The client hung up: a write then fails with ConnectionError, or (uvloop)
            # with RuntimeError once the transport is closed.
            if isinstance(exc, RuntimeError) and not writer.transport.is_closing():
                raise
            if response is not None and response._streaming:
                self.aborted_streams += 1
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # Only our own shutdown cancels these; ending normally keeps asyncio's
            # stream callback from logging the cancellation as an error.
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(self, request: RecordedRequest, response: Response) -> None:
        """Answer one request; vendors override this."""
        response.send_json(404, {"error": f"no route for {request.method} {request.path}"})

    def words(self, text: str) -> int:
        """Deterministic token count: whitespace-separated words."""
        return len(text.split())


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        raw = await _read_chunked(reader)
    else:
        length = int(headers.get("content-length") or 0)
        raw = await reader.readexactly(length) if length else b""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    path, _, query = target.partition("?")
    return RecordedRequest(method, path, query, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _new_loop() -> asyncio.AbstractEventLoop:
    # uvloop (from uvicorn[standard]) makes the fake cheaper under benchmark load.
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
