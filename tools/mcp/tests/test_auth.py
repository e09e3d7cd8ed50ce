"""Credentials and outbound hooks on HTTP and WebSocket transports."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from tools.mcp import McpClientManager, McpConnectionError
from tools.mcp.testing import McpTestServer

TOKEN = "tok-7f3a"


@pytest.fixture(scope="module", params=["streamable_http", "websocket"])
def locked_server(request: pytest.FixtureRequest) -> Iterator[McpTestServer]:
    with McpTestServer(request.param, name="locked", token=TOKEN) as server:
        yield server


async def test_api_key_is_sent_as_bearer_token(
    manager: McpClientManager, locked_server: McpTestServer
) -> None:
    config = locked_server.config(api_key=TOKEN)

    assert (await manager.call_tool(config, "add", {"a": 1, "b": 2})).text == "3"


async def test_server_rejects_connection_without_api_key(
    manager: McpClientManager, locked_server: McpTestServer
) -> None:
    with pytest.raises(McpConnectionError) as caught:
        await manager.list_tools(locked_server.config())

    assert caught.value.message == (
        "Could not connect to MCP server 'locked': the server rejected the credentials (HTTP 401)"
    )


async def test_wrong_api_key_is_rejected_and_not_echoed(
    manager: McpClientManager, locked_server: McpTestServer
) -> None:
    with pytest.raises(McpConnectionError) as caught:
        await manager.probe(locked_server.config(api_key="wrong-key-123"))

    assert "wrong-key-123" not in caught.value.message
    assert "wrong-key-123" not in str(caught.value.details)


async def test_probe_validates_a_server_and_lists_its_tools(
    manager: McpClientManager, locked_server: McpTestServer
) -> None:
    tools = await manager.probe(locked_server.config(api_key=TOKEN))

    assert "locked__echo" in {tool.qualified_name for tool in tools}


async def test_injected_http_client_factory_is_used() -> None:
    made: list[dict[str, str]] = []

    def factory(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        made.append(dict(headers or {}))
        # The product's hook would add its outbound guard here; this one adds the token.
        return httpx2.AsyncClient(
            headers={**(headers or {}), "Authorization": f"Bearer {TOKEN}"}, timeout=timeout
        )

    manager = McpClientManager(http_client_factory=factory)
    try:
        with McpTestServer("streamable_http", name="locked", token=TOKEN) as server:
            result = await manager.call_tool(server.config(), "echo", {"text": "via hook"})
    finally:
        await manager.aclose()

    assert result.text == "via hook"
    assert len(made) == 1


async def test_url_guard_can_refuse_a_server(locked_server: McpTestServer) -> None:
    seen: list[str] = []

    async def guard(url: str) -> None:
        seen.append(url)
        raise ValueError("127.0.0.1 is not a public address")

    manager = McpClientManager(url_guard=guard)
    try:
        with pytest.raises(McpConnectionError) as caught:
            await manager.list_tools(locked_server.config(api_key=TOKEN))
    finally:
        await manager.aclose()

    assert seen == [locked_server.url]
    # The guard's own words are not repeated: they may name an address or host, and the
    # message is kept as the server's last error for keys that may not see the URL.
    assert caught.value.message == (
        "Could not connect to MCP server 'locked': refused by the outbound policy: "
        "its URL is not allowed"
    )
