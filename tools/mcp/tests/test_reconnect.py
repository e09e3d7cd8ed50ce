"""Servers that are down, restart or die: errors are clean and connections come back."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from tools.mcp import McpClientManager, McpConnectionError, McpServerConfig
from tools.mcp.testing import McpTestServer, free_port, stdio_config


async def handshakes_seen(manager: McpClientManager, config: McpServerConfig) -> int:
    return int((await manager.call_tool(config, "handshakes_seen")).text)


@pytest.mark.parametrize("transport", ["streamable_http", "websocket"])
async def test_server_that_is_down_raises_connection_error(
    manager: McpClientManager, transport: str
) -> None:
    config = McpServerConfig(
        name="gone",
        transport=transport,  # type: ignore[arg-type]
        url=f"{'ws' if transport == 'websocket' else 'http'}://127.0.0.1:{free_port()}/mcp",
        api_key="secret-key",
    )

    with pytest.raises(McpConnectionError) as caught:
        await manager.call_tool(config, "add", {"a": 1, "b": 2})

    assert caught.value.type == "mcp_connection_error"
    assert caught.value.message == (
        "Could not connect to MCP server 'gone': "
        "the server is unreachable (connection refused or failed)"
    )
    assert "secret-key" not in str(caught.value.details)


async def test_stdio_command_that_does_not_exist_raises_connection_error(
    manager: McpClientManager,
) -> None:
    config = McpServerConfig(name="ghost", transport="stdio", command="/nonexistent/mcp-server")

    with pytest.raises(McpConnectionError) as caught:
        await manager.list_tools(config)

    assert caught.value.message == (
        "Could not connect to MCP server 'ghost': the command could not be started"
    )


async def test_stdio_server_that_exits_at_once_raises_connection_error(
    manager: McpClientManager,
) -> None:
    config = McpServerConfig(
        name="quitter", transport="stdio", command=sys.executable, args=("-c", "pass")
    )

    with pytest.raises(McpConnectionError, match="Could not connect to MCP server 'quitter'"):
        await manager.list_tools(config)


@pytest.mark.parametrize("transport", ["streamable_http", "websocket"])
async def test_calls_work_again_after_the_server_restarts(
    manager: McpClientManager, transport: str
) -> None:
    with McpTestServer(transport) as server:  # type: ignore[arg-type]
        config = server.config()
        assert (await manager.call_tool(config, "add", {"a": 1, "b": 1})).text == "2"

        server.restart()

        assert (await manager.call_tool(config, "add", {"a": 2, "b": 2})).text == "4"
        assert (await manager.call_tool(config, "echo", {"text": "back"})).text == "back"


@pytest.mark.parametrize("transport", ["streamable_http", "websocket"])
async def test_call_while_server_is_down_fails_cleanly_then_recovers(
    manager: McpClientManager, transport: str
) -> None:
    with McpTestServer(transport) as server:  # type: ignore[arg-type]
        config = server.config()
        await manager.call_tool(config, "add", {"a": 1, "b": 1})
        server.stop()

        with pytest.raises(McpConnectionError):
            await manager.call_tool(config, "add", {"a": 1, "b": 1})

        server.start()
        assert (await manager.call_tool(config, "add", {"a": 3, "b": 3})).text == "6"


async def test_killed_stdio_server_is_respawned_on_next_call(manager: McpClientManager) -> None:
    config = stdio_config("mortal")
    first_pid = int((await manager.call_tool(config, "pid")).text)

    os.kill(first_pid, signal.SIGKILL)

    second_pid = int((await manager.call_tool(config, "pid")).text)
    assert second_pid != first_pid
    assert (await manager.call_tool(config, "add", {"a": 5, "b": 5})).text == "10"


async def test_websocket_restart_opens_a_new_session(manager: McpClientManager) -> None:
    with McpTestServer("websocket") as server:
        config = server.config()
        assert await handshakes_seen(manager, config) == 1

        server.restart()

        # The new process has seen exactly the handshake of our fresh connection.
        assert await handshakes_seen(manager, config) == 1


async def test_expired_http_session_is_replaced_in_legacy_mode() -> None:
    # The initialize-handshake era keeps a session id; a restarted server no longer
    # knows it and answers 404, which must lead to a new session, not an error.
    manager = McpClientManager(mode="legacy")
    try:
        with McpTestServer("streamable_http") as server:
            config = server.config()
            assert (await manager.call_tool(config, "add", {"a": 1, "b": 1})).text == "2"

            server.restart()

            assert (await manager.call_tool(config, "add", {"a": 2, "b": 3})).text == "5"
            assert await handshakes_seen(manager, config) == 1
    finally:
        await manager.aclose()


async def test_server_that_never_answers_the_handshake_times_out_as_connection_error(
    manager: McpClientManager,
) -> None:
    # Reads stdin until it closes, never writes: a hung server.
    silent = McpServerConfig(
        name="silent",
        transport="stdio",
        command=sys.executable,
        args=("-c", "import sys; sys.stdin.read()"),
        timeout_s=0.5,
    )

    with pytest.raises(McpConnectionError) as caught:
        await manager.call_tool(silent, "add", {"a": 1, "b": 1})

    assert caught.value.message == "Could not connect to MCP server 'silent': no answer within 0.5s"
