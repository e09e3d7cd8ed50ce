"""`/api/v1/mcp/*` over HTTP, against real MCP servers made with the `mcp` SDK."""

import sys

import pytest
from asgiref.sync import sync_to_async

from chats.models import Chat, Message
from conftest import async_client_for
from tools.mcp.testing import McpTestServer
from tools.models import McpServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def allow_local(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def ws_server():
    with McpTestServer("websocket", name="ws", token="tok-123") as server:
        yield server


@pytest.fixture
def http_server():
    with McpTestServer("streamable_http", name="web") as server:
        yield server


@pytest.fixture
def tenant(make_tenant):
    subtenant, raw, _ = make_tenant("acme")
    return subtenant, async_client_for(raw)


async def post(client, path, body):
    return await client.post(path, body, content_type="application/json")


async def test_websocket_server_registration_lists_tools_and_masks_the_key(
    tenant, ws_server, allow_local
):
    _, client = tenant
    body = {"name": "my_tools", "url": ws_server.url, "protocol": "websocket", "api_key": "tok-123"}
    response = await post(client, "/api/v1/mcp/servers", body)
    assert response.status_code == 201, response.content
    row = response.json()
    assert row["status"] == "connected"
    assert {"my_tools__add", "my_tools__echo", "my_tools__search"} <= set(row["tools"])
    assert "tok-123" not in response.content.decode()
    listed = await client.get("/api/v1/mcp/servers")
    assert "tok-123" not in listed.content.decode()
    assert listed.json()["results"][0]["api_key"].startswith("****")

    run = await post(
        client, "/api/v1/mcp/tools/my_tools__add/execute", {"arguments": {"a": 2, "b": 3}}
    )
    assert run.status_code == 200, run.content
    assert run.json()["text"] == "5" and run.json()["is_error"] is False
    failed = await post(client, "/api/v1/mcp/tools/my_tools__fail/execute", {})
    assert failed.status_code == 200 and failed.json()["is_error"] is True


async def test_wrong_key_or_unreachable_server_is_not_stored(tenant, ws_server, allow_local):
    _, client = tenant
    wrong = await post(
        client,
        "/api/v1/mcp/servers",
        {"name": "bad", "url": ws_server.url, "protocol": "websocket", "api_key": "nope"},
    )
    assert wrong.status_code == 502
    assert wrong.json()["error"]["type"] == "mcp_connection_error"
    down = await post(
        client,
        "/api/v1/mcp/servers",
        {"name": "down", "url": "http://127.0.0.1:9/mcp", "protocol": "http"},
    )
    assert down.status_code == 502
    assert await McpServer.objects.acount() == 0


async def test_private_addresses_need_the_allowlist(tenant, http_server, settings):
    _, client = tenant
    settings.OUTBOUND_ALLOWED_HOSTS = []
    response = await post(
        client, "/api/v1/mcp/servers", {"name": "web", "url": http_server.url, "protocol": "http"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "unsafe_url"
    assert await McpServer.objects.acount() == 0


async def test_two_servers_with_a_search_tool_get_distinct_names(
    tenant, http_server, ws_server, allow_local
):
    _, client = tenant
    await post(
        client, "/api/v1/mcp/servers", {"name": "web", "url": http_server.url, "protocol": "http"}
    )
    await post(
        client,
        "/api/v1/mcp/servers",
        {"name": "ws", "url": ws_server.url, "protocol": "websocket", "api_key": "tok-123"},
    )
    tools = (await client.get("/api/v1/mcp/tools")).json()["results"]
    names = [t["name"] for t in tools]
    assert "web__search" in names and "ws__search" in names
    web = await post(client, "/api/v1/mcp/tools/web__search/execute", {"arguments": {"query": "q"}})
    ws = await post(client, "/api/v1/mcp/tools/ws__search/execute", {"arguments": {"query": "q"}})
    assert web.json()["text"] != ws.json()["text"]


async def test_calls_work_again_after_the_server_restarts(tenant, http_server, allow_local):
    _, client = tenant
    await post(
        client, "/api/v1/mcp/servers", {"name": "web", "url": http_server.url, "protocol": "http"}
    )
    first = await post(client, "/api/v1/mcp/tools/web__echo/execute", {"arguments": {"text": "a"}})
    assert first.json()["text"] == "a"
    await sync_to_async(http_server.restart)()
    again = await post(client, "/api/v1/mcp/tools/web__echo/execute", {"arguments": {"text": "b"}})
    assert again.status_code == 200, again.content
    assert again.json()["text"] == "b"


async def test_a_stopped_server_shows_its_status_and_last_error(tenant, http_server, allow_local):
    _, client = tenant
    await post(
        client, "/api/v1/mcp/servers", {"name": "web", "url": http_server.url, "protocol": "http"}
    )
    await sync_to_async(http_server.stop)()
    tools = await client.get("/api/v1/mcp/tools")
    assert tools.status_code == 200
    assert tools.json()["results"][0]["server_status"] == "error"
    row = (await client.get("/api/v1/mcp/servers")).json()["results"][0]
    assert row["status"] == "error" and row["last_error"]


async def test_stdio_servers_are_for_admin_keys(tenant, admin_key):
    _, client = tenant
    stdio = {
        "name": "local",
        "protocol": "stdio",
        "command": sys.executable,
        "args": ["-m", "tools.mcp.testing", "--transport", "stdio", "--name", "local"],
    }
    assert (await post(client, "/api/v1/mcp/servers", stdio)).status_code == 403
    admin = async_client_for(admin_key)
    response = await post(admin, "/api/v1/mcp/servers", stdio)
    assert response.status_code == 201, response.content
    assert "local__add" in response.json()["tools"]
    # A global server: offered to the subtenant too, but not removable by it.
    run = await post(
        client, "/api/v1/mcp/tools/local__add/execute", {"arguments": {"a": 1, "b": 1}}
    )
    assert run.json()["text"] == "2"
    assert (await client.delete("/api/v1/mcp/servers/local")).status_code == 404
    assert (await admin.delete("/api/v1/mcp/servers/local")).status_code == 204


async def test_another_tenants_server_is_invisible(tenant, make_tenant, http_server, allow_local):
    _, client = tenant
    await post(
        client, "/api/v1/mcp/servers", {"name": "web", "url": http_server.url, "protocol": "http"}
    )
    _, raw, _ = await sync_to_async(make_tenant)("other")
    other = async_client_for(raw)
    assert (await other.get("/api/v1/mcp/servers")).json()["results"] == []
    assert (await other.get("/api/v1/mcp/tools")).json()["results"] == []
    run = await post(other, "/api/v1/mcp/tools/web__echo/execute", {"arguments": {"text": "x"}})
    assert run.status_code == 404
    assert (await other.delete("/api/v1/mcp/servers/web")).status_code == 404
    assert await McpServer.objects.acount() == 1


async def test_a_chat_model_uses_an_mcp_tool(tenant, http_server, allow_local, llm_fakes):
    subtenant, client = tenant
    await post(
        client, "/api/v1/mcp/servers", {"name": "web", "url": http_server.url, "protocol": "http"}
    )
    chat = await Chat.objects.acreate(subtenant=subtenant, provider="openai")
    llm_fakes.openai.enqueue(tool_calls=[{"name": "web__add", "arguments": {"a": 20, "b": 22}}])
    llm_fakes.openai.enqueue(text="The sum is 42.")
    response = await post(client, f"/api/v1/chats/{chat.id}/messages", {"content": "20+22 via MCP"})
    assert response.status_code == 200, response.content
    assert response.json()["message"]["content"] == "The sum is 42."
    tool = await Message.objects.aget(chat=chat, role="tool")
    assert tool.name == "web__add" and tool.content == "42"
    offered = {t["function"]["name"] for t in llm_fakes.openai.chat_requests()[0].body["tools"]}
    assert "web__add" in offered


async def test_a_global_servers_url_and_credentials_stay_with_admins(
    tenant, admin_key, http_server, allow_local
):
    """A subtenant sees a global server's name, status and tools; an admin sees its URL
    with query values masked; the server still gets the URL and headers as stored."""
    from tools.mcp.testing import TcpFront

    _, client = tenant
    admin = async_client_for(admin_key)
    with TcpFront(http_server.port) as front:
        url = front.url("http", "/mcp?token=q-s3cret")
        body = {
            "name": "shared",
            "url": url,
            "protocol": "http",
            "api_key": "k-s3cret-key",
            "headers": {"X-Secret": "h-s3cret"},
        }
        created = await post(admin, "/api/v1/mcp/servers", body)
        assert created.status_code == 201, created.content
        admin_row = (await admin.get("/api/v1/mcp/servers")).json()["results"][0]
        listed = await client.get("/api/v1/mcp/servers")
        run = await post(client, "/api/v1/mcp/tools/shared__echo/execute", {"text": "hi"})

    shown = front.url("http", "/mcp?token=***")
    assert created.json()["url"] == shown and admin_row["url"] == shown
    assert admin_row["headers"] == {"X-Secret": "****"}
    assert admin_row["api_key"].startswith("****")
    row = listed.json()["results"][0]
    assert row["name"] == "shared" and "shared__echo" in row["tools"]
    assert not {"url", "api_key", "headers", "command", "args"} & set(row)
    for text in (created.content.decode(), listed.content.decode(), str(admin_row)):
        assert "q-s3cret" not in text and "h-s3cret" not in text and "k-s3cret" not in text
    assert str(front.port) not in listed.content.decode()
    # Stored intact, and used as stored.
    assert run.status_code == 200 and run.json()["text"] == "hi"
    sent = b"\n".join(front.heads).lower()
    assert b"/mcp?token=q-s3cret " in sent and b"x-secret: h-s3cret" in sent
    assert (await McpServer.objects.aget(name="shared")).url == url


async def test_a_refused_mcp_host_is_not_mapped_to_its_address(tenant, monkeypatch):
    import socket

    real_getaddrinfo = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        host = "10.20.30.40" if host == "mcp.internal" else host
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    _, client = tenant
    response = await post(
        client,
        "/api/v1/mcp/servers",
        {"name": "probe", "url": "wss://mcp.internal/mcp", "protocol": "websocket"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "unsafe_url"
    assert "non-public address" in response.json()["error"]["message"]
    assert "10.20.30.40" not in response.content.decode()
    assert await McpServer.objects.acount() == 0
