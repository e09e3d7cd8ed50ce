"""Outbound calls through the running service: MCP over WebSocket, streamable HTTP and
SSE, and webhook functions.

No transport follows a redirect: each server under test is a real one behind a
``TcpFront``; the redirect points at a second front (forwarding to the same real
server, so following it would work), which must never see a connection. And none goes
through a proxy named in the environment (the proxy would resolve the name, not us).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tools.mcp.testing import McpTestServer, TcpFront
from tools.models import Function, McpServer

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMES = {"websocket": "ws", "streamable_http": "http", "sse": "http"}
PATHS = {"websocket": "/mcp", "streamable_http": "/mcp", "sse": "/sse"}


@pytest.fixture(scope="module", params=list(SCHEMES))
def mcp_server(request: pytest.FixtureRequest) -> Iterator[McpTestServer]:
    with McpTestServer(request.param, name="real") as server:
        yield server


@pytest.fixture
def allow_local(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def fronts(mcp_server: McpTestServer) -> Iterator[tuple[TcpFront, TcpFront]]:
    """(front, target): both forward to the real server; the test makes front redirect."""
    with TcpFront(mcp_server.port) as front, TcpFront(mcp_server.port) as target:
        yield front, target


def api(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base_url}/api/v1",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        trust_env=False,
    )


def register(client: httpx.Client, transport: str, url: str) -> httpx.Response:
    return client.post("/mcp/servers", json={"name": "tools", "url": url, "transport": transport})


@pytest.mark.parametrize("status", [301, 302, 307])
def test_mcp_registration_refuses_a_redirect_to_another_address(
    live_server_url, make_tenant, allow_local, mcp_server, fronts, status
):
    front, target = fronts
    transport, scheme, path = (
        mcp_server.transport,
        SCHEMES[mcp_server.transport],
        PATHS[mcp_server.transport],
    )
    front.redirect(status, target.url(scheme, path))
    _, key, _ = make_tenant()
    with api(live_server_url, key) as client:
        response = register(client, transport, front.url(scheme, path))

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "mcp_redirect_refused"
    assert "redirect" in error["message"] and f"HTTP {status}" in error["message"]
    assert error["details"]["status"] == status
    assert str(target.port) not in response.text  # the Location is not echoed
    assert front.connections and target.connections == []
    assert not McpServer.objects.exists()


def test_mcp_registration_refuses_a_redirect_within_the_same_server(
    live_server_url, make_tenant, allow_local, mcp_server, fronts
):
    """Even to another path on the same origin (which the MCP SDK would follow itself)."""
    front, _ = fronts
    transport, scheme, path = (
        mcp_server.transport,
        SCHEMES[mcp_server.transport],
        PATHS[mcp_server.transport],
    )
    front.redirect(307, path, only_path="/old")
    _, key, _ = make_tenant()
    with api(live_server_url, key) as client:
        response = register(client, transport, front.url(scheme, "/old"))

    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "mcp_redirect_refused"
    assert [line.split()[1] for line in front.connections] == ["/old"]
    assert not McpServer.objects.exists()


def test_mcp_tool_call_fails_once_the_server_redirects(
    live_server_url, make_tenant, allow_local, mcp_server, fronts
):
    front, target = fronts
    transport, scheme, path = (
        mcp_server.transport,
        SCHEMES[mcp_server.transport],
        PATHS[mcp_server.transport],
    )
    _, key, _ = make_tenant()
    with api(live_server_url, key) as client:
        assert register(client, transport, front.url(scheme, path)).status_code == 201
        front.redirect(302, target.url(scheme, path))
        run = client.post("/mcp/tools/tools__echo/execute", json={"arguments": {"text": "x"}})
        assert run.status_code == 502, run.text
        assert run.json()["error"]["type"] == "mcp_redirect_refused"
        assert "redirect" in run.json()["error"]["message"]

        # Refreshing the tool list records the reason on the server.
        assert client.get("/mcp/tools").status_code == 200
        row = client.get("/mcp/servers").json()["results"][0]
    assert row["status"] == "error" and "redirect" in row["last_error"]
    assert target.connections == []


def test_a_model_gets_a_tool_error_when_an_mcp_server_redirects(
    live_server_url, make_tenant, allow_local, mcp_server, fronts, llm_fakes
):
    from chats.models import Chat, Message

    front, target = fronts
    transport, scheme, path = (
        mcp_server.transport,
        SCHEMES[mcp_server.transport],
        PATHS[mcp_server.transport],
    )
    subtenant, key, _ = make_tenant()
    chat = Chat.objects.create(subtenant=subtenant, provider="openai")
    llm_fakes.openai.enqueue(tool_calls=[{"name": "tools__echo", "arguments": {"text": "x"}}])
    llm_fakes.openai.enqueue(text="The tool failed.")
    with api(live_server_url, key) as client:
        assert register(client, transport, front.url(scheme, path)).status_code == 201
        front.redirect(307, target.url(scheme, path))
        response = client.post(f"/chats/{chat.id}/messages", json={"content": "echo x"})

    assert response.status_code == 200, response.text
    assert response.json()["message"]["content"] == "The tool failed."
    tool = Message.objects.get(chat=chat, role="tool")
    assert tool.content.startswith("mcp_redirect_refused: ") and "redirect" in tool.content
    assert target.connections == []


@pytest.fixture
def webhook_front(webhook) -> Iterator[TcpFront]:
    port = int(webhook.url.split(":")[2].split("/")[0])
    with TcpFront(port) as front:
        yield front


@pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308])
def test_webhook_call_refuses_a_redirect(
    live_server_url, make_tenant, allow_local, webhook, webhook_front, status
):
    """The redirect points at a working webhook: following it would have succeeded."""
    webhook_front.redirect(status, webhook.url)
    _, key, _ = make_tenant()
    with api(live_server_url, key) as client:
        url = webhook_front.url("http", "/hook")
        assert (
            client.post("/functions/register", json={"name": "hook", "url": url}).status_code == 201
        )
        run = client.post("/functions/hook/execute", json={"arguments": {}})

    assert run.status_code == 502, run.text
    error = run.json()["error"]
    assert error["type"] == "outbound_request_failed"
    assert "redirect" in error["message"] and error["details"]["status"] == status
    assert webhook.requests == []
    assert Function.objects.filter(name="hook").exists()


@pytest.fixture
def proxy_env(monkeypatch) -> Iterator[TcpFront]:
    """Every proxy variable points at a local listener that records connections."""
    with TcpFront(None) as proxy:
        address = proxy.url("http", "")
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "WS_PROXY", "WSS_PROXY"):
            monkeypatch.setenv(name, address)
            monkeypatch.setenv(name.lower(), address)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        yield proxy


def test_mcp_connections_ignore_proxy_variables(
    live_server_url, make_tenant, allow_local, mcp_server, proxy_env
):
    _, key, _ = make_tenant()
    with api(live_server_url, key) as client:
        response = register(client, mcp_server.transport, mcp_server.url)
        assert response.status_code == 201, response.text
        run = client.post("/mcp/tools/tools__echo/execute", json={"arguments": {"text": "hi"}})
        assert run.status_code == 200, run.text
    assert run.json()["text"] == "hi"
    assert proxy_env.heads == []


def test_webhook_calls_ignore_proxy_variables(
    live_server_url, make_tenant, allow_local, webhook, proxy_env
):
    _, key, _ = make_tenant()
    with api(live_server_url, key) as client:
        assert (
            client.post(
                "/functions/register", json={"name": "hook", "url": webhook.url}
            ).status_code
            == 201
        )
        run = client.post("/functions/hook/execute", json={"arguments": {}})
    assert run.status_code == 200, run.text
    assert len(webhook.requests) == 1
    assert proxy_env.heads == []
