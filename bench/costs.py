"""What each piece of a gateway request costs, measured in-process, one piece at a time.

    python bench/costs.py            # with the project's interpreter (it imports Django)

Complements run.py (end to end, over HTTP) and profile_gateway.py (sampled): starts the
fake upstream, migrates a throwaway database and creates a key like run.py, then, in this
process with the gateway's settings, times each piece of `POST /api/v1/llm/complete`
separately on the same event loop uvicorn uses (uvloop), sequentially, and prints a
Markdown table (also written to bench/results/costs.md). Pieces overlap: the full ASGI
request contains all the others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from scenarios import HELLO, MODEL
from stack import BENCH, Stack, StackConfig

RESULTS = BENCH / "results"
Step = Callable[[], Awaitable[Any]]
SyncStep = Callable[[], Any]


async def measure(step: Step, *, seconds: float, warmup: int = 20) -> dict[str, float]:
    for _ in range(warmup):
        await step()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 50:
        started = time.perf_counter()
        await step()
        times.append(time.perf_counter() - started)
    return _stats(times)


def measure_sync(step: SyncStep, *, seconds: float, warmup: int = 20) -> dict[str, float]:
    for _ in range(warmup):
        step()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 50:
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return _stats(times)


def _stats(times: list[float]) -> dict[str, float]:
    return {
        "n": len(times),
        "median_us": statistics.median(times) * 1e6,
        "mean_us": statistics.fmean(times) * 1e6,
    }


class AsgiClient:
    """Calls the ASGI application directly: the whole request minus HTTP and sockets."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())]
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        finished = asyncio.Event()
        sent_body = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    finished.set()

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def run_all(raw_key: str, seconds: float) -> list[tuple[str, str, dict[str, float]]]:
    from asgiref.sync import ThreadSensitiveContext, sync_to_async
    from django.db import close_old_connections

    from llmwrapper.asgi import application
    from llmwrapper.auth import authenticate_raw_key
    from providers import gateway
    from providers.core.types import ChatRequest, Message
    from providers.models import LlmCall
    from surfaces.llm.api import CompletionRequestSerializer
    from tenants.selectors import api_key_get_active

    key = await sync_to_async(api_key_get_active)(raw_key=raw_key)
    subtenant = await sync_to_async(lambda: key.subtenant)()
    client = AsgiClient(application)
    body = {"provider": "openai", "model": MODEL, "messages": HELLO}
    body_bytes = json.dumps(body).encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {raw_key}"}
    provider = gateway.registry().get("openai")
    chat_request = ChatRequest(model=MODEL, messages=(Message("user", "hello"),))

    import httpx

    upstream = os.environ["OPENAI_BASE_URL"] + "/chat/completions"
    raw_http = httpx.AsyncClient()
    upstream_body = {"model": MODEL, "messages": HELLO}

    async def full_request() -> None:
        status, answer = await client.request("POST", "/api/v1/llm/complete", body_bytes, headers)
        assert status == 200, answer

    async def not_found() -> None:
        status, _ = await client.request("GET", "/api/v1/no-such-endpoint", b"", headers)
        assert status == 404

    async def empty_thread_hop() -> None:
        async with ThreadSensitiveContext():
            await sync_to_async(lambda: None)()

    async def eleven_thread_hops() -> None:
        async with ThreadSensitiveContext():
            for _ in range(11):
                await sync_to_async(lambda: None)()

    async def auth_in_request_thread() -> None:
        # As in a request: a fresh thread, so a fresh database connection.
        async with ThreadSensitiveContext():
            await sync_to_async(authenticate_raw_key)(raw_key)
            await sync_to_async(close_old_connections)()

    def auth_query_only() -> None:
        authenticate_raw_key(raw_key)

    async def validate_body() -> None:
        serializer = CompletionRequestSerializer(data=body)
        assert serializer.is_valid()

    async def provider_stream() -> None:
        async for _ in provider.stream(chat_request):
            pass

    async def provider_complete() -> None:
        await provider.complete(chat_request)

    async def httpx_post() -> None:
        response = await raw_http.post(upstream, json=upstream_body)
        response.json()

    async def record_call() -> None:
        async with ThreadSensitiveContext():
            await LlmCall.objects.abulk_create(
                [
                    LlmCall(
                        subtenant=subtenant,
                        api_key=key,
                        source="direct",
                        provider="openai",
                        model=MODEL,
                        status="ok",
                    )
                ]
            )

    steps: list[tuple[str, str, Step | SyncStep, bool]] = [
        ("whole request", "ASGI app in-process: POST /api/v1/llm/complete", full_request, True),
        ("Django + middleware", "ASGI app: GET an unknown path (404)", not_found, True),
        (
            "per-request thread",
            "ThreadSensitiveContext + one sync_to_async",
            empty_thread_hop,
            True,
        ),
        (
            "11 thread hops",
            "ThreadSensitiveContext + 11 sync_to_async (a request makes about 19)",
            eleven_thread_hops,
            True,
        ),
        (
            "authentication",
            "authenticate_raw_key in a request's fresh thread (new DB connection)",
            auth_in_request_thread,
            True,
        ),
        ("authentication query", "authenticate_raw_key, connection reused", auth_query_only, False),
        ("body validation", "CompletionRequestSerializer.is_valid", validate_body, True),
        ("upstream call (as used)", "OpenAIProvider.stream, consumed", provider_stream, True),
        ("upstream, non-streaming", "OpenAIProvider.complete", provider_complete, True),
        ("upstream floor", "httpx.AsyncClient.post + .json()", httpx_post, True),
        ("call record", "LlmCall abulk_create in a request context", record_call, True),
    ]
    results = []
    for name, detail, step, is_async in steps:
        if is_async:
            result = await measure(step, seconds=seconds)  # type: ignore[arg-type]
        else:
            # Sync ORM code: the whole measurement in one worker thread (one connection).
            result = await sync_to_async(measure_sync, thread_sensitive=False)(
                step, seconds=seconds
            )
        results.append((name, detail, result))
        print(f"{name:>26}: {result['median_us']:8.0f} us median", file=sys.stderr)
    await raw_http.aclose()
    return results


def render(results: list[tuple[str, str, dict[str, float]]], info: str) -> str:
    out = [
        "## Cost of each piece of `POST /api/v1/llm/complete` (in-process)",
        "",
        info,
        "",
        "| piece | what is timed | median µs | mean µs | runs |",
        "|---|---|---|---|---|",
    ]
    for name, detail, r in results:
        out.append(
            f"| {name} | {detail} | {r['median_us']:.0f} | {r['mean_us']:.0f} | {r['n']:.0f} |"
        )
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time each piece of a gateway request.")
    parser.add_argument("--seconds", type=float, default=2.0, help="per piece")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    config = StackConfig(python=sys.executable, gateway=False, log_dir=args.out)
    with Stack(config) as stack:
        os.environ.update(stack.env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmwrapper.settings")
        sys.path.insert(0, str(Path(stack.env["PYTHONPATH"])))
        import django

        django.setup()
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        results = runner(run_all(stack.api_key, args.seconds))
    info = (
        f"Python {sys.version.split()[0]}, {'uvloop' if runner is not asyncio.run else 'asyncio'}"
        f" loop, SQLite, fake upstream on loopback; {args.seconds:g} s per piece, sequential. "
        "Command: `python bench/costs.py`"
    )
    text = render(results, info)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "costs.md").write_text(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
