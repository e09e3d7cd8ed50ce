"""ALLOWED_HOSTS holds on every path, HTTP and WebSocket, not only in the admin.

A DNS-rebinding page makes a victim's browser send requests to 127.0.0.1 under the
attacker's host name; `/metrics` trusts 127.0.0.1, so the Host header is the one thing
that tells such a request apart.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chats.models import Chat

pytestmark = pytest.mark.django_db(transaction=True)

EVIL = "rebind.attacker.example"


@pytest.fixture
def served(live_server_url, make_tenant, admin_key):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, title="t", provider="openai")
    return live_server_url, chat, raw, admin_key


def get(base: str, path: str, host: str | None = None, key: str | None = None) -> httpx.Response:
    headers = {"Host": host} if host else {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.get(base + path, headers=headers, timeout=10)


def assert_invalid_host(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "invalid_host" and set(error) == {"type", "message", "details"}
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "path",
    ["/metrics", "/api/v1/subtenants", "/v1/models", "/api/schema/", "/admin/login/", "/nowhere"],
)
@pytest.mark.parametrize("host", [EVIL, f"{EVIL}:8000", "127.0.0.1.attacker.example"])
def test_a_foreign_host_gets_400_on_every_path(served, path, host):
    base, _, _, admin_key = served
    assert_invalid_host(get(base, path, host, admin_key))


def test_allowed_hosts_are_served(served):
    base, chat, raw, admin_key = served
    port = urlsplit(base).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", "[::1]"):
        assert get(base, "/metrics", host).status_code == 200, host
        assert get(base, f"/api/v1/chats/{chat.id}", host, raw).status_code == 200, host
    assert get(base, "/api/v1/subtenants", None, admin_key).status_code == 200


def test_health_answers_any_host_for_load_balancers(served):
    base = served[0]
    for host in ("10.1.2.3:8000", EVIL):
        response = get(base, "/health", host)
        assert response.status_code == 200 and response.json()["status"] == "ok"


def test_the_setting_decides(served, settings):
    base, chat, raw, _ = served
    settings.ALLOWED_HOSTS = ["gateway.internal", ".example.org"]
    assert get(base, f"/api/v1/chats/{chat.id}", "gateway.internal:8000", raw).status_code == 200
    assert get(base, "/metrics", "api.example.org").status_code == 200
    assert_invalid_host(get(base, "/metrics", "127.0.0.1"))
    settings.ALLOWED_HOSTS = ["*"]
    assert get(base, "/metrics", EVIL).status_code == 200


async def _handshake(base: str, chat: Chat, raw: str, host: str) -> str:
    """Open the chat socket on the live server, sending `host` as its Host header."""
    address = urlsplit(base)
    sock = socket.create_connection((address.hostname, address.port))
    url = f"ws://{host}/ws/chats/{chat.id}/"
    try:
        async with connect(
            url, sock=sock, additional_headers={"Authorization": f"Bearer {raw}"}, proxy=None
        ) as ws:
            await ws.close()
            return "accepted"
    except InvalidStatus as exc:
        return f"refused {exc.response.status_code}"
    finally:
        sock.close()


def test_websocket_handshakes_with_a_foreign_host_are_refused(served):
    base, chat, raw, _ = served
    port = urlsplit(base).port
    assert asyncio.run(_handshake(base, chat, raw, f"127.0.0.1:{port}")) == "accepted"
    assert asyncio.run(_handshake(base, chat, raw, f"localhost:{port}")) == "accepted"
    assert asyncio.run(_handshake(base, chat, raw, f"{EVIL}:{port}")) == "refused 403"
    assert asyncio.run(_handshake(base, chat, raw, EVIL)) == "refused 403"
