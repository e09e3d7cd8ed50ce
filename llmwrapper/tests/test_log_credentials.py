"""No credential in any line the service writes, whatever server runs it.

Browsers put the chat WebSocket's key in the query string (`?api_key=lw_...`), and the
servers print request paths with their query: uvicorn's WebSocket lines and access
log, daphne's access log (straight to stdout, not through `logging`) and the console
lines of `manage.py runserver`. Each server is started here as a real process, as its
command line starts it, called over HTTP and WebSocket with a real key and a bad one,
and its whole output is searched for them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from chats.models import Chat

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
BAD_KEY = "lw_" + "notAKeyButLooksLikeOne0123456789abcdefghij"
VENDOR_KEY = "sk-proj-" + "v3nd0rSecretThatMustNotAppear42"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        return f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


# The command lines that start the service: uvicorn as documented (its access log on by
# default), the Makefile's `serve` (workers), `make run` (runserver, here with DEBUG on
# as developers run it, without the reloader) and daphne's own command.
SERVERS = {
    "uvicorn": lambda port: [
        sys.executable,
        "-m",
        "uvicorn",
        "llmwrapper.asgi:application",
        "--port",
        str(port),
        "--lifespan",
        "off",
    ],
    "make-serve": lambda port: [
        sys.executable,
        "-m",
        "uvicorn",
        "llmwrapper.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        "--no-access-log",
        "--lifespan",
        "off",
    ],
    "runserver": lambda port: [
        sys.executable,
        "manage.py",
        "runserver",
        f"127.0.0.1:{port}",
        "--noreload",
        "--insecure",
    ],
    "daphne": lambda port: [
        sys.executable,
        "-m",
        "daphne",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "llmwrapper.asgi:application",
    ],
}


class Service:
    """One server process of the service, its stdout and stderr in one file."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
            "LOG_FORMAT": "json",
            "DEBUG": "true" if name == "runserver" else "false",
        }
        for unset in ("LOG_LEVEL", "LOG_CONTENT"):
            env.pop(unset, None)
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            SERVERS[name](self.port),
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers are stopped with it, as a group
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.output()}")
            try:
                httpx.get(f"{self.url}/health", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"the server did not start:\n{self.output()}")

    def stop(self) -> str:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()
        return self.output()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def service(tmp_path):
    started: list[Service] = []

    def start(name: str) -> Service:
        server = Service(name, tmp_path / f"{name}.log")
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


async def _open_socket(url: str) -> str:
    """Open the chat socket: "open" when it stays open, else how it was refused or closed."""
    try:
        async with connect(url, proxy=None, open_timeout=10) as ws:
            try:
                async with asyncio.timeout(1):
                    while True:  # an error frame may come before the close
                        await ws.recv()
            except TimeoutError:
                return "open"
            except ConnectionClosed as exc:
                return f"closed {exc.rcvd.code if exc.rcvd else None}"
    except InvalidStatus as exc:
        return f"refused {exc.response.status_code}"
    except (WebSocketException, OSError) as exc:
        return f"failed {type(exc).__name__}"


def _call(base: str, chat: Chat, raw_key: str) -> dict[str, object]:
    path = f"/api/v1/chats/{chat.id}"
    with httpx.Client(base_url=base, timeout=10) as http:
        good = http.get(
            path,
            params={"api_key": raw_key, "x": "1"},
            headers={"Authorization": f"Bearer {raw_key}", "X-Api-Key": raw_key},
        )
        bad = http.get(path, params={"api_key": BAD_KEY, "key": VENDOR_KEY})
    ws_base = base.replace("http://", "ws://", 1) + f"/ws/chats/{chat.id}/"
    sockets = [
        asyncio.run(_open_socket(f"{ws_base}?api_key={raw_key}")),
        asyncio.run(_open_socket(f"{ws_base}?api_key={BAD_KEY}&token={VENDOR_KEY}")),
    ]
    return {"good": good.status_code, "bad": bad.status_code, "sockets": sockets}


@pytest.mark.parametrize("server", list(SERVERS))
def test_keys_in_query_strings_and_headers_never_reach_the_output(
    server, service, make_tenant, tmp_path
):
    subtenant, raw_key, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, title="t", provider="openai")
    running = service(server)

    outcome = _call(running.url, chat, raw_key)
    time.sleep(0.5)  # lines written as the sockets close
    output = running.stop()

    assert outcome["good"] == 200 and outcome["bad"] == 401, outcome
    assert outcome["sockets"][0] == "open", outcome
    assert outcome["sockets"][1] != "open", outcome
    for secret in (raw_key, raw_key[3:], BAD_KEY, BAD_KEY[3:], VENDOR_KEY, VENDOR_KEY[3:]):
        assert secret not in output, f"{server} wrote a credential:\n{output}"

    # The requests are still logged, with the credentials' values redacted.
    assert f'"path":"/api/v1/chats/{chat.id}"' in output, output
    assert '"query":"api_key=[redacted]&x=1"' in output, output
    assert '"query":"api_key=[redacted]&key=[redacted]"' in output, output
    if server == "uvicorn":
        assert f'WebSocket /ws/chats/{chat.id}/?api_key=[redacted]\\" [accepted]' in output
    if server == "runserver":
        assert f"HTTP GET /api/v1/chats/{chat.id}?api_key=[redacted]&x=1 200" in output
    if server == "daphne":
        assert f'"GET /api/v1/chats/{chat.id}?api_key=[redacted]&x=1" 200' in output
