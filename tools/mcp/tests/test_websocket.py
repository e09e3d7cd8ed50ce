"""The WebSocket transport on its own, with the SDK's client on top."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp import Client

from tools.mcp.testing import McpTestServer
from tools.mcp.websocket import WebSocketHandshakeError, websocket_client


@pytest.fixture(scope="module")
def locked_ws_server() -> Iterator[McpTestServer]:
    with McpTestServer("websocket", token="ws-token") as server:
        yield server


async def test_sdk_client_runs_over_the_websocket_transport(
    locked_ws_server: McpTestServer,
) -> None:
    transport = websocket_client(
        locked_ws_server.url, headers={"Authorization": "Bearer ws-token"}, timeout=5
    )
    async with Client(transport) as client:
        tools = await client.list_tools()
        result = await client.call_tool("add", {"a": 20, "b": 22})

    assert "echo" in {tool.name for tool in tools.tools}
    assert result.content[0].text == "42"  # type: ignore[union-attr]


async def test_refused_upgrade_raises_handshake_error_with_status(
    locked_ws_server: McpTestServer,
) -> None:
    with pytest.raises(WebSocketHandshakeError) as caught:
        async with websocket_client(locked_ws_server.url, timeout=5):
            pass

    assert caught.value.status == 401
    assert str(caught.value) == "server refused the WebSocket upgrade (HTTP 401)"


async def test_legacy_handshake_mode_works_over_websocket(locked_ws_server: McpTestServer) -> None:
    transport = websocket_client(
        locked_ws_server.url, headers={"Authorization": "Bearer ws-token"}, timeout=5
    )
    async with Client(transport, mode="legacy") as client:
        result = await client.call_tool("echo", {"text": "old style"})

    assert result.content[0].text == "old style"  # type: ignore[union-attr]
