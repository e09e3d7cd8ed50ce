"""The vendor calls' HTTP/1.1 client (`providers.core.http1`) against raw servers that
answer byte for byte: each framing of a body, kept connections (and one the server
closed meanwhile), timeouts, a body cut short, TLS; and the OpenAI adapter going
through a proxy from the environment with httpx instead."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Awaitable, Callable

import pytest

from providers.core.base import ProviderConfig
from providers.core.errors import ProviderUpstreamError
from providers.core.http1 import Http1Pool, HttpError, HttpTimeout
from providers.core.types import ChatRequest, Message
from providers.core.vendors.openai import OpenAIProvider
from tools.testing_tls import self_signed

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[bool]]


class RawServer:
    """Reads each request's head and body, then lets `answer` write raw bytes; `answer`
    returns whether to keep the connection for another request."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer, self.tls = answer, tls
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                if not await self.answer(reader, writer, len(self.requests)):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _pool(port: int, scheme: str = "http", **options) -> Http1Pool:
    options.setdefault("connect_timeout", 2.0)
    options.setdefault("read_timeout", 2.0)
    return Http1Pool(
        f"{scheme}://127.0.0.1:{port}/v1", headers={"Authorization": "Bearer k"}, **options
    )


async def _post(pool: Http1Pool, url: str, body: bytes):
    return await pool.post(pool.target(url), body)


async def _length(reader, writer, n):
    body = json.dumps({"n": n}).encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return True


async def _chunked(reader, writer, n):
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for piece in (b"data: one\n", b"data: tw", b"o\r\n\r\ndata: three\n\n"):
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await writer.drain()
        await asyncio.sleep(0.01)
    writer.write(b"0\r\n\r\n")
    return True


async def test_bodies_of_each_framing_are_read_whole_and_kept_connections_reused():
    async with RawServer(_length) as server:
        pool = _pool(server.port)
        for n in (1, 2, 3):
            response = await _post(pool, f"http://127.0.0.1:{server.port}/v1/chat", b'{"a":1}')
            assert response.status_code == 200
            assert json.loads(await response.aread()) == {"n": n}
        assert server.connections == 1
        assert pool.target(f"https://127.0.0.1:{server.port}/v1/chat") is None  # other origin
        assert (
            pool.target(f"http://127.0.0.1:{server.port}/v1/c?api-version=1")
            == "/v1/c?api-version=1"
        )
        assert server.requests[0].startswith(b"POST /v1/chat HTTP/1.1\r\n")
        assert b"\r\nAuthorization: Bearer k\r\n" in server.requests[0]
        assert server.requests[0].endswith(b'\r\n\r\n{"a":1}')
        await pool.aclose()

    async with RawServer(_chunked) as server:
        pool = _pool(server.port)
        for _ in range(2):
            response = await _post(pool, f"http://127.0.0.1:{server.port}/v1/s", b"{}")
            lines = [line async for line in response.aiter_lines()]
            await response.aclose()
            assert lines == ["data: one", "data: two", "", "data: three", ""]
        assert server.connections == 1
        await pool.aclose()


async def test_a_body_to_the_connection_end_is_read_and_the_connection_not_kept():
    async def until_close(reader, writer, n):
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nall of it")
        return False

    async with RawServer(until_close) as server:
        pool = _pool(server.port)
        for _ in range(2):
            response = await _post(pool, f"http://127.0.0.1:{server.port}/x", b"")
            assert await response.aread() == b"all of it"
        assert server.connections == 2
        await pool.aclose()


async def test_a_kept_connection_the_server_closed_is_replaced_without_an_error():
    async def once_per_connection(reader, writer, n):
        await _length(reader, writer, n)
        return False  # closes after answering, while the client keeps the connection

    async with RawServer(once_per_connection) as server:
        pool = _pool(server.port)
        for n in (1, 2, 3):
            response = await _post(pool, f"http://127.0.0.1:{server.port}/x", b"{}")
            assert json.loads(await response.aread()) == {"n": n}
            await asyncio.sleep(0.05)
        assert (server.connections, len(server.requests)) == (3, 3)
        await pool.aclose()


async def test_a_request_a_kept_connection_dropped_unanswered_is_sent_once_more():
    async def drops_the_second(reader, writer, n):
        if n == 2:
            return False  # the server closes the kept connection as the request arrives
        await _length(reader, writer, n)
        return True

    async with RawServer(drops_the_second) as server:
        pool = _pool(server.port)
        first = await _post(pool, f"http://127.0.0.1:{server.port}/x", b"{}")
        assert json.loads(await first.aread()) == {"n": 1}
        second = await _post(pool, f"http://127.0.0.1:{server.port}/x", b"{}")
        assert json.loads(await second.aread()) == {"n": 3}
        assert server.connections == 2
        await pool.aclose()


async def test_a_silent_server_times_out_and_a_cut_body_is_an_error():
    async def silent(reader, writer, n):
        await asyncio.sleep(10)
        return False

    async with RawServer(silent) as server:
        pool = _pool(server.port, read_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(HttpTimeout):
            await _post(pool, f"http://127.0.0.1:{server.port}/x", b"{}")
        assert time.monotonic() - started < 2

    async def cut(reader, writer, n):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        return False

    async with RawServer(cut) as server:
        pool = _pool(server.port)
        response = await _post(pool, f"http://127.0.0.1:{server.port}/x", b"{}")
        with pytest.raises(HttpError):
            await response.aread()


async def test_nothing_listening_is_an_error():
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    with pytest.raises(HttpError):
        await _post(_pool(port), f"http://127.0.0.1:{port}/x", b"{}")


async def test_https_with_the_servers_certificate_trusted(tmp_path):
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    async with RawServer(_length, tls=server_tls) as server:
        trusted = ssl.create_default_context(cafile=str(cert))
        pool = Http1Pool(
            f"https://localhost:{server.port}/v1",
            headers={},
            connect_timeout=2,
            read_timeout=2,
            ssl_context=trusted,
        )
        response = await _post(pool, f"https://localhost:{server.port}/v1/x", b"{}")
        assert json.loads(await response.aread()) == {"n": 1}
        await pool.aclose()

        untrusting = _pool(server.port, scheme="https", ssl_context=ssl.create_default_context())
        with pytest.raises(HttpError):
            await _post(untrusting, f"https://127.0.0.1:{server.port}/v1/x", b"{}")


async def test_a_proxy_from_the_environment_is_used(monkeypatch):
    completion = {
        "id": "c",
        "model": "m",
        "choices": [{"message": {"content": "via proxy"}, "finish_reason": "stop"}],
    }

    async def proxy(reader, writer, n):
        body = json.dumps(completion).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        return True

    async with RawServer(proxy) as server:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        config = ProviderConfig(
            name="private",
            kind="openai_compatible",
            base_url="http://vendor.invalid/v1",
            default_model="m",
        )
        provider = OpenAIProvider(config)
        result = await provider.complete(ChatRequest(model="m", messages=(Message("user", "hi"),)))
        await provider.aclose()
    assert result.text == "via proxy"
    assert server.requests[0].startswith(b"POST http://vendor.invalid/v1/chat/completions ")


async def test_the_adapter_maps_a_refused_connection_to_a_retryable_upstream_error():
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    config = ProviderConfig(
        name="private",
        kind="openai_compatible",
        base_url=f"http://127.0.0.1:{port}/v1",
        default_model="m",
    )
    provider = OpenAIProvider(config)
    with pytest.raises(ProviderUpstreamError) as raised:
        await provider.complete(ChatRequest(model="m", messages=(Message("user", "hi"),)))
    assert raised.value.retryable
    await provider.aclose()
