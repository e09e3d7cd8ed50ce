"""Chat streams while PostgreSQL restarts and its connections are terminated.

A real service process on a throwaway PostgreSQL server, with a small pool; streams
are open when the database goes away. Afterwards no message may stay `streaming`,
every upstream call has its record, and the pool serves the next sends at once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection

from llmwrapper.testing import postgres
from providers.testing import FakeOpenAI

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
STREAMS = 6


@pytest.fixture
def service(app_process):
    if connection.vendor != "postgresql" or not postgres.available():
        pytest.skip("runs with the PostgreSQL configuration (it starts a server of its own)")
    with postgres.ThrowawayPostgres() as pg, FakeOpenAI() as fake:
        env = {
            "DATABASE_URL": pg.create_database("llmwrapper"),
            "DATABASE_POOL_MAX_SIZE": "3",
            "DATABASE_POOL_TIMEOUT": "1.5",
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": fake.base_url,
            "DEFAULT_LLM_PROVIDER": "openai",
            "PROVIDER_MAX_RETRIES": "0",
            "CHAT_LEASE_SECONDS": "2",
            "CHAT_PARTIAL_SAVE_SECONDS": "0.2",
        }
        manage = [sys.executable, "manage.py"]
        full_env = {**os.environ, **env}
        subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=full_env, check=True)
        out = subprocess.run(
            [*manage, "create_admin_key", "--name", "faults"],
            cwd=ROOT,
            env=full_env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        admin = re.search(r"lw_\S+", out).group(0)
        base = app_process(**env)
        yield (
            pg,
            fake,
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=30),
        )


def _stream(
    client: httpx.Client, chat_id: str, ends: list[str], started: threading.Barrier
) -> None:
    events = []
    try:
        with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages/stream", json={"content": "go on"}
        ) as response:
            for line in response.iter_lines():
                if line.startswith("event: "):
                    events.append(line[7:])
                    if events.count("delta") == 1:
                        started.wait(30)
    except (httpx.HTTPError, threading.BrokenBarrierError) as exc:
        events.append(f"failed: {exc!r}")
    ends.append(events[-1] if events else "nothing")


def _restart(pg: postgres.ThrowawayPostgres, client: httpx.Client, chat_id: str) -> None:
    pg.stop(mode="fast")
    # While it is down, a new send is refused within the pool's wait, and honestly.
    started = time.monotonic()
    refused = client.post(f"/api/v1/chats/{chat_id}/messages", json={"content": "hello?"})
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["type"] == "service_unavailable"
    assert refused.json()["error"]["details"] == {"reason": "database_unavailable"}
    assert refused.headers["Retry-After"] == "5"
    assert time.monotonic() - started < 10
    # Down longer than the streams last and than the pool's wait: their final writes
    # must be retried until it is back.
    time.sleep(max(0.0, 5 - (time.monotonic() - started)))
    pg.start()


def _terminate(pg: postgres.ThrowawayPostgres, client: httpx.Client, chat_id: str) -> None:
    pg.terminate_backends("llmwrapper")


def test_streams_survive_database_restarts_and_terminated_connections(service):
    pg, fake, client = service
    subtenant = client.post("/api/v1/subtenants", json={"name": "acme"}).json()["id"]
    chats = [
        client.post(f"/api/v1/subtenants/{subtenant}/chats", json={"provider": "openai"}).json()[
            "id"
        ]
        for _ in range(STREAMS)
    ]
    spare = client.post(f"/api/v1/subtenants/{subtenant}/chats", json={}).json()["id"]

    for incident in (_restart, _terminate, _restart):
        for _ in range(STREAMS):
            fake.enqueue(text=" ".join(f"w{i}" for i in range(20)), chunks=20, chunk_delay=0.15)
        ends: list[str] = []
        started = threading.Barrier(STREAMS + 1)
        threads = [threading.Thread(target=_stream, args=(client, c, ends, started)) for c in chats]
        for thread in threads:
            thread.start()
        started.wait(30)  # every stream is under way
        incident(pg, client, spare)
        for thread in threads:
            thread.join(60)
        # Every stream ended with exactly its terminal event; the answers were kept.
        assert ends == ["message.completed"] * STREAMS, (incident.__name__, ends)

    # Nothing is left streaming (the sweeper would end what a final write missed).
    deadline = time.monotonic() + 10
    while True:
        statuses = [
            m["status"]
            for chat_id in chats
            for m in client.get(f"/api/v1/chats/{chat_id}/messages").json()["results"]
        ]
        if "streaming" not in statuses or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert statuses.count("streaming") == 0
    assert statuses.count("complete") == 2 * 3 * STREAMS  # user + assistant, three rounds

    # The pool (3 connections) recovered: the next sends are served at once.
    for chat_id in chats:
        fake.enqueue(text="after")
        answer = client.post(f"/api/v1/chats/{chat_id}/messages", json={"content": "still there?"})
        assert answer.status_code == 200, answer.text

    # Every upstream call has its record (the writer retries until the database is back).
    calls = len(fake.chat_requests())
    deadline = time.monotonic() + 15
    with pg.connect("llmwrapper") as db:
        while True:
            (stored,) = db.execute("SELECT count(*) FROM providers_llmcall").fetchone()
            if stored >= calls or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert stored == calls == 4 * STREAMS
