"""Fixtures shared by every app's tests: API keys and authenticated HTTP clients."""

from __future__ import annotations

import contextlib

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from tenants.models import Subtenant
from tenants.services import api_key_create

# The app served inside the test process (`live_server_url`) runs no lease sweeper:
# tests call `chats.leases.sweep()` themselves. Processes from `app_process` run theirs.
django_settings.CHAT_LEASE_SWEEP = False


def client_for(raw_key: str | None) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def admin_key(db) -> str:
    _, raw = api_key_create(name="test-admin")
    return raw


@pytest.fixture
def admin_client(admin_key: str) -> APIClient:
    return client_for(admin_key)


@pytest.fixture
def make_tenant(db):
    """Create a subtenant and a key for it: returns (subtenant, raw key, client)."""

    def make(name: str = "acme", **fields) -> tuple[Subtenant, str, APIClient]:
        subtenant = Subtenant.objects.create(name=name, **fields)
        _, raw = api_key_create(name=f"{name}-key", subtenant=subtenant)
        return subtenant, raw, client_for(raw)

    return make


class LlmFakes:
    """Every registered provider, each pointed at a fake vendor server on 127.0.0.1:
    `llm_fakes.openai`, `llm_fakes["local"]`."""

    def __init__(self, fakes: dict) -> None:
        self._fakes = fakes

    def __getattr__(self, provider: str):
        try:
            return self._fakes[provider]
        except KeyError:
            raise AttributeError(provider) from None

    def __getitem__(self, provider: str):
        return self._fakes[provider]


@pytest.fixture
def llm_fakes(settings):
    from providers.core.descriptors import all_descriptors
    from providers.testing import fake_for

    with contextlib.ExitStack() as started:
        fakes = {}
        for described in all_descriptors():
            fake = fakes[described.name] = started.enter_context(fake_for(described)())
            if endpoint := described.setting("base_url"):
                setattr(settings, endpoint.name, fake.base_url)
            if key := described.setting("api_key"):
                setattr(settings, key.name, f"sk-test-{described.name}")
        settings.PROVIDER_READ_TIMEOUT = 5.0
        settings.PROVIDER_RETRY_BASE_DELAY = 0.01
        settings.PROVIDER_RETRY_MAX_DELAY = 0.05
        settings.DEFAULT_LLM_PROVIDER = "openai"
        settings.LLM_FALLBACKS = []
        yield LlmFakes(fakes)


def async_client_for(raw_key: str | None):
    """An ASGI test client sending the key on every request."""
    from django.test import AsyncClient

    class KeyedAsyncClient(AsyncClient):
        # AsyncClient drops constructor headers, so they are added per request.
        def generic(self, *args, headers=None, **kwargs):  # type: ignore[no-untyped-def]
            merged = {"Authorization": f"Bearer {raw_key}"} if raw_key else {}
            merged.update(headers or {})
            return super().generic(*args, headers=merged, **kwargs)

    return KeyedAsyncClient()


async def read_sse(response) -> list[tuple[str, dict]]:
    """Parse a whole SSE response body into (event, data) pairs."""
    import json

    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


@pytest.fixture(scope="session", autouse=True)
def _terminate_stray_connections(django_db_setup, django_db_blocker):
    """Async views reach the database from worker threads whose connections outlive the
    tests; PostgreSQL would refuse to drop the test database while they are open."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture
def live_server_url(transactional_db):
    """The ASGI application served by uvicorn on 127.0.0.1 (HTTP and WebSocket)."""
    import socket
    import threading
    import time

    import uvicorn

    from llmwrapper.asgi import application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def app_process(transactional_db):
    """Start the service in separate uvicorn processes on the test database (and Redis).

    `start(**env)` returns the base URL of a new process; all are stopped afterwards.
    `start.processes` maps each URL to its `subprocess.Popen` (to kill one, say).
    """
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "postgresql":
        host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        database_url = f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}"
    else:
        database_url = f"sqlite:///{db['NAME']}"
    processes: list[subprocess.Popen] = []

    def start(**env: str) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        full_env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": settings.REDIS_URL,
            **env,
        }
        command = [sys.executable, "-m", "uvicorn", "llmwrapper.asgi:application"]
        command += ["--port", str(port), "--lifespan", "off", "--log-level", "warning"]
        process = subprocess.Popen(command, cwd=Path(__file__).resolve().parent, env=full_env)
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        start.processes[url] = process
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/health", timeout=1)
                return url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the service process did not start")

    start.processes = {}
    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


@pytest.fixture
def throwaway_redis():
    """A redis-server of the test's own on another port, to stop, kill and restart."""
    from llmwrapper.testing import redis

    if not redis.available():
        pytest.skip("needs the redis-server binary")
    with redis.ThrowawayRedis() as server:
        yield server


@pytest.fixture(autouse=True)
def attachments_root(settings, tmp_path):
    """Attachment files (images and documents of chat messages) in a folder of the
    test's own, never in the project's."""
    folder = tmp_path / "attachments"
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(folder)},
        },
    }
    return folder


@pytest.fixture(autouse=True)
def _process_caches_cleared():
    """Caches a process keeps for seconds (prices, stored connections and routes) start
    empty in every test, whatever the one before stored."""
    from connections import catalog
    from providers.prices import price_cache_clear

    price_cache_clear()
    catalog.forget()
    yield
    price_cache_clear()
    catalog.forget()


@pytest.fixture(autouse=True)
def _call_records_stored():
    """Each test's call records are stored before the next test cleans the database."""
    yield
    from providers.records import wait_idle

    wait_idle()


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    """Remove what SQLite leaves beside this run's test database (WAL and shared-memory
    files that threads still had open when Django dropped it)."""
    import glob
    import os

    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        return
    name = (database.get("TEST") or {}).get("NAME")
    if name:
        for leftover in glob.glob(f"{glob.escape(name)}*"):
            with contextlib.suppress(OSError):
                os.remove(leftover)
