"""Many chat streams at once: N concurrent SSE sends, each answered in 20 pieces over 2 s.

    python bench/streams.py --database-url postgres://postgres@127.0.0.1:5432/<fresh db>
    python bench/streams.py --streams 1000 --chats 1     # all of them in one chat

Starts the stack of `run.py` (gateway on uvicorn, 2 workers) with the fake upstream
pacing every answer (`upstream.py --chunks 20 --chunk-delay 0.1`), creates the chats
through the project's services, then opens every stream at once from one asyncio
client (raw HTTP/1.1, one connection each) and reads each to its terminal event. It
reports how many ended with `message.completed`, how many with an `error` event, an
HTTP error or a broken connection, the time to the last stream's end, and the
gateway's resident memory (peak of the sum over its processes, and per worker).
Writes bench/results/streams.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import time
from pathlib import Path

from stack import BENCH, MemoryPeak, Stack, StackConfig

RESULTS = BENCH / "results"

CREATE_CHATS = """
from chats import services
from tenants.models import Subtenant
subtenant = Subtenant.objects.get(pk={subtenant!r})
result = [str(services.chat_create(subtenant=subtenant).pk) for _ in range({count})]
"""


async def one_stream(port: int, key: str, chat_id: str, outcomes: collections.Counter) -> None:
    body = json.dumps({"content": "hi", "server_tools": False}).encode()
    request = (
        f"POST /api/v1/chats/{chat_id}/messages/stream HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(request)
        await writer.drain()
        status = (await reader.readline()).split(b" ")[1]
        if status != b"200":
            outcomes[f"http {status.decode()}"] += 1
            writer.close()
            return
        outcome = "ended without a terminal event"
        async for line in reader:
            if line.startswith(b"event: message.completed"):
                outcome = "completed"
                break
            if line.startswith(b"event: error"):
                outcome = "error event"
                break
        outcomes[outcome] += 1
        writer.close()
    except (OSError, IndexError, asyncio.IncompleteReadError) as exc:
        outcomes[f"connection: {type(exc).__name__}"] += 1


async def load(port: int, key: str, chats: list[str], streams: int) -> tuple[dict, float]:
    outcomes: collections.Counter = collections.Counter()
    started = time.perf_counter()
    await asyncio.gather(
        *(one_stream(port, key, chats[i % len(chats)], outcomes) for i in range(streams))
    )
    return dict(outcomes), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Many concurrent chat streams.")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--chats", type=int, default=1000, help="spread over this many chats")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    config = StackConfig(
        python=args.python,
        workers=args.workers,
        database_url=args.database_url,
        log_dir=args.out,
        upstream_args=("--chunks", "20", "--chunk-delay", "0.1"),
        extra_env={"PROVIDER_MAX_RETRIES": "0"},
    )
    with Stack(config) as stack:
        chats = stack.django_json(
            CREATE_CHATS.format(subtenant=stack.subtenant_id, count=min(args.chats, args.streams))
        )
        gateway = stack.servers["gateway"]
        port = int(gateway.base_url.rsplit(":", 1)[1])
        before = gateway.memory()
        with MemoryPeak({"gateway": gateway}) as peak:
            outcomes, seconds = asyncio.run(load(port, stack.api_key, chats, args.streams))
        after = gateway.memory()
    lines = [
        "## Concurrent chat streams",
        "",
        f"- {args.streams} streams over {len(chats)} chat(s), {args.workers} workers, "
        f"database {'PostgreSQL' if args.database_url else 'SQLite'}; each answer 20 "
        "pieces 0.1 s apart",
        f"- outcomes: {json.dumps(outcomes, sort_keys=True)}",
        f"- all ended after {seconds:.1f} s",
        f"- gateway memory (resident, summed over its {after.processes} processes): "
        f"{before.rss_kb / 1024:.0f} MB before, {after.rss_kb / 1024:.0f} MB after, "
        f"peak {peak.peaks['gateway'] / 1024:.0f} MB",
        "",
    ]
    text = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "streams.md").write_text(text)
    print(text)
    return 0 if outcomes.get("completed") == args.streams else 1


if __name__ == "__main__":
    sys.exit(main())
