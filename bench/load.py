"""Load generation: wrk for latency and throughput, a small probe for streaming timings.

wrk (C, one event loop per thread) drives the load and reports latency percentiles of
whole responses. It cannot tell when the first byte or the first token of a streamed
answer arrives, so `probe` does that: one keep-alive connection speaking raw HTTP/1.1 on
asyncio streams, sending one request at a time and at most one every `interval` seconds.
It stays far from saturating a core (it is one connection, paced), so its timings are the
server's, not the client's. At a concurrency c > 1, wrk holds the other c - 1 streams open
while the probe measures.

A `Call` may name several paths (say one per chat of a pool): wrk and the probe then send
to each in turn, so no single resource grows with every request of a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LUA_POST = Path(__file__).resolve().parent / "lua" / "post.lua"


@dataclass(frozen=True)
class Call:
    """One request to put under load, and how to recognise a good answer."""

    server: str  # name of the Stack server that answers it ("direct", "gateway", ...)
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    expect: bytes = b""  # must appear in a successful answer
    first_token: bytes | None = None  # regex marking the first token of a streamed answer
    paths: tuple[str, ...] = ()  # when given, requests go to each in turn (`path` unused)

    @property
    def all_paths(self) -> tuple[str, ...]:
        return self.paths or (self.path,)

    def body_bytes(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: dict[str, int]
    cpu_ms_per_request: float | None = None  # of the answering server's process tree

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProbeResult:
    samples: int
    errors: int
    first_byte_ms: dict[str, float]  # p50, p90, p99 of time to the first body byte
    first_token_ms: dict[str, float]  # ... to the chunk completing the first-token marker
    total_ms: dict[str, float]  # ... to the end of the answer
    connections: int = 1  # the probe's own; others were busy with background load

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    return path


def _wrk_command(url: str, connections: int, threads: int, duration: float) -> list[str]:
    return [
        require_wrk(),
        f"-t{max(1, min(threads, connections))}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "30s",
        "-s",
        str(LUA_POST),
        url,
    ]


def _wrk_env(call: Call, workdir: Path) -> dict[str, str]:
    body = call.body_bytes()
    body_file = workdir / f"body-{hashlib.sha256(body).hexdigest()[:16]}.json"
    body_file.write_bytes(body)
    env = dict(os.environ)
    env["BENCH_BODY_FILE"] = str(body_file)
    env["BENCH_HEADERS"] = "".join(f"{name}: {value}\n" for name, value in call.headers.items())
    env.pop("BENCH_PATHS_FILE", None)
    if len(call.all_paths) > 1:
        listing = "\n".join(call.all_paths).encode() + b"\n"
        paths_file = workdir / f"paths-{hashlib.sha256(listing).hexdigest()[:16]}.txt"
        paths_file.write_bytes(listing)
        env["BENCH_PATHS_FILE"] = str(paths_file)
    return env


def run_wrk(
    base_url: str,
    call: Call,
    *,
    connections: int,
    duration: float,
    threads: int,
    workdir: Path,
) -> WrkResult:
    """Closed-loop load: `connections` keep-alive connections, each sending back to back."""
    command = _wrk_command(base_url + call.path, connections, threads, duration)
    result = subprocess.run(
        command,
        env=_wrk_env(call, workdir),
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
    )
    return _parse_wrk(result.stdout, result.stderr)


def _parse_wrk(stdout: str, stderr: str) -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            raw = json.loads(line.removeprefix("BENCH_RESULT "))
            duration = raw["duration_us"] / 1e6
            return WrkResult(
                requests=raw["requests"],
                duration_s=round(duration, 3),
                rps=raw["requests"] / duration if duration else 0.0,
                p50_ms=raw["p50_us"] / 1000,
                p90_ms=raw["p90_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                max_ms=raw["max_us"] / 1000,
                mean_ms=raw["mean_us"] / 1000,
                errors=raw["errors"],
            )
    raise RuntimeError(f"wrk printed no result:\n{stdout}\n{stderr}")


@contextlib.contextmanager
def background_wrk(
    base_url: str,
    call: Call,
    *,
    connections: int,
    duration: float,
    threads: int,
    workdir: Path,
) -> Iterator[subprocess.Popen[str] | None]:
    """wrk running while the body of the `with` runs; stopped (and reaped) on exit."""
    if connections <= 0:
        yield None
        return
    command = _wrk_command(base_url + call.path, connections, threads, duration)
    process = subprocess.Popen(
        command,
        env=_wrk_env(call, workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)  # let it open its connections and reach a steady state
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


# -- the streaming probe ---------------------------------------------------------------


@dataclass
class _Sample:
    status: int
    first_byte: float
    first_token: float | None
    total: float
    body: bytes
    keep_alive: bool


def probe(
    base_url: str,
    call: Call,
    *,
    duration: float,
    interval: float,
    connections: int = 1,
    background: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
    max_samples: int = 5000,
) -> ProbeResult:
    """Time first byte, first token and end of `call`, answered again and again.

    `connections` keep-alive connections each send one request at a time; together they
    send at most one request per `interval` seconds. They are all open before
    `background()` (another load, e.g. `background_wrk`) is entered, so which uvicorn
    worker each lands on is not decided by that load.
    """
    return asyncio.run(
        _probe(base_url, call, duration, interval, connections, background, max_samples)
    )


async def _probe(
    base_url: str,
    call: Call,
    duration: float,
    interval: float,
    connections: int,
    background: Callable[[], contextlib.AbstractContextManager[object]] | None,
    max_samples: int,
) -> ProbeResult:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = call.body_bytes()
    requests = []
    for path in call.all_paths:
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in call.headers.items()),
        ]
        requests.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    turn = itertools.cycle(requests)
    marker = re.compile(call.first_token or b".")
    samples: list[_Sample] = []
    errors = 0

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(host, port, limit=1 << 20)

    async def one_connection(
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, deadline: float
    ) -> None:
        nonlocal errors
        pace = interval * connections
        try:
            while time.perf_counter() < deadline and len(samples) < max_samples:
                started = time.perf_counter()
                if connection is None:
                    connection = await connect()
                try:
                    sample = await asyncio.wait_for(
                        _exchange(*connection, next(turn), marker), timeout=60
                    )
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                    errors += 1
                    _close(connection)
                    connection = None
                    continue
                if not sample.keep_alive:
                    _close(connection)
                    connection = None
                ok = sample.status == 200 and sample.first_token is not None
                if ok and (not call.expect or call.expect in sample.body):
                    samples.append(sample)
                else:
                    errors += 1
                pause = started + pace - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
        finally:
            if connection is not None:
                _close(connection)

    opened = [await connect() for _ in range(connections)]
    with background() if background else contextlib.nullcontext():
        deadline = time.perf_counter() + duration
        await asyncio.gather(*(one_connection(c, deadline) for c in opened))
    return ProbeResult(
        samples=len(samples),
        errors=errors,
        first_byte_ms=_summary([s.first_byte for s in samples]),
        first_token_ms=_summary([s.first_token or 0.0 for s in samples]),
        total_ms=_summary([s.total for s in samples]),
        connections=connections,
    )


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    request: bytes,
    marker: re.Pattern[bytes],
) -> _Sample:
    started = time.perf_counter()
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    keep_alive = headers.get("connection") != "close"

    received = bytearray()
    first_byte: float | None = None
    first_token: float | None = None

    def got(data: bytes) -> None:
        nonlocal first_byte, first_token
        now = time.perf_counter()
        if first_byte is None and data:
            first_byte = now - started
        received.extend(data)
        if first_token is None and marker.search(received):
            first_token = now - started

    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            got((await reader.readexactly(size + 2))[:-2])
    else:
        length = int(headers.get("content-length") or 0)
        if length:
            got(await reader.readexactly(length))
    end = time.perf_counter() - started
    return _Sample(status, first_byte or end, first_token, end, bytes(received), keep_alive)


def _close(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    with contextlib.suppress(Exception):
        connection[1].close()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _summary(seconds: list[float]) -> dict[str, float]:
    return {f"p{p}": round(percentile(seconds, p) * 1000, 3) for p in (50, 90, 99)}
