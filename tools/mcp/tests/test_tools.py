"""Listing and calling tools on real MCP servers over every transport."""

from __future__ import annotations

import re

import pytest

from tools.mcp import (
    McpClientManager,
    McpServerConfig,
    McpTimeoutError,
    McpToolNotFoundError,
)
from tools.mcp.testing import McpTestServer

VENDOR_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


async def handshakes_seen(manager: McpClientManager, config: McpServerConfig) -> int:
    return int((await manager.call_tool(config, "handshakes_seen")).text)


async def test_lists_the_servers_tools_with_schemas_and_qualified_names(
    shared_manager: McpClientManager, server_config: McpServerConfig
) -> None:
    tools = {tool.name: tool for tool in await shared_manager.list_tools(server_config)}

    assert {"add", "echo", "search", "fail"} <= set(tools)
    add = tools["add"]
    assert add.server == server_config.name
    assert add.qualified_name == f"{server_config.name}__add"
    assert add.description == "Add two integers."
    assert add.input_schema["properties"].keys() == {"a", "b"}
    assert add.input_schema["required"] == ["a", "b"]
    assert all(VENDOR_TOOL_NAME.match(tool.qualified_name) for tool in tools.values())


async def test_calls_add_and_echo_and_returns_their_content(
    shared_manager: McpClientManager, server_config: McpServerConfig
) -> None:
    added = await shared_manager.call_tool(server_config, "add", {"a": 2, "b": 40})
    echoed = await shared_manager.call_tool(server_config, "echo", {"text": "héllo"})

    assert added.is_error is False
    assert added.text == "42"
    assert added.content == [{"type": "text", "text": "42"}]
    assert added.structured == {"result": 42}
    assert echoed.text == "héllo"


async def test_tool_that_raises_comes_back_as_error_result(
    shared_manager: McpClientManager, server_config: McpServerConfig
) -> None:
    result = await shared_manager.call_tool(server_config, "fail", {})

    assert result.is_error is True
    assert "fail" in result.text


async def test_invalid_arguments_come_back_as_error_result(
    shared_manager: McpClientManager, server_config: McpServerConfig
) -> None:
    result = await shared_manager.call_tool(server_config, "add", {"a": "not a number"})

    assert result.is_error is True


async def test_unknown_tool_raises_tool_not_found(
    shared_manager: McpClientManager, server_config: McpServerConfig
) -> None:
    with pytest.raises(McpToolNotFoundError) as caught:
        await shared_manager.call_tool(server_config, "no_such_tool", {})

    assert caught.value.type == "mcp_tool_not_found"
    assert caught.value.message == (
        f"MCP server '{server_config.name}' has no tool named 'no_such_tool'"
    )


async def test_slow_tool_raises_timeout_and_connection_stays_usable(
    shared_manager: McpClientManager, server_config: McpServerConfig
) -> None:
    with pytest.raises(McpTimeoutError) as caught:
        await shared_manager.call_tool(server_config, "sleep", {"seconds": 5}, timeout_s=0.3)

    assert caught.value.type == "mcp_timeout"
    assert (
        await shared_manager.call_tool(server_config, "echo", {"text": "still"})
    ).text == "still"


async def test_session_is_opened_once_and_reused_across_calls(
    manager: McpClientManager, fresh_server_config: McpServerConfig
) -> None:
    await manager.list_tools(fresh_server_config)
    await manager.call_tool(fresh_server_config, "add", {"a": 1, "b": 2})
    await manager.call_tool(fresh_server_config, "echo", {"text": "x"})

    assert await handshakes_seen(manager, fresh_server_config) == 1


async def test_legacy_sse_transport_lists_and_calls_tools(manager: McpClientManager) -> None:
    with McpTestServer("sse", name="legacy", token="sse-token") as server:
        config = server.config(api_key="sse-token")

        tools = await manager.list_tools(config)
        result = await manager.call_tool(config, "echo", {"text": "over sse"})
        await manager.close(config)

    assert "legacy__echo" in {tool.qualified_name for tool in tools}
    assert result.text == "over sse"
