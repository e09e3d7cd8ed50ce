"""The manager's cache: namespacing, reuse across event loops, closing, config changes."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tools.mcp import McpClientManager, McpServerConfig
from tools.mcp.testing import McpTestServer, stdio_config


async def handshakes_seen(manager: McpClientManager, config: McpServerConfig) -> int:
    return int((await manager.call_tool(config, "handshakes_seen")).text)


async def test_two_servers_with_the_same_tool_get_distinct_qualified_names(
    manager: McpClientManager, ws_server: McpTestServer
) -> None:
    alpha = stdio_config("alpha")
    beta = ws_server.config(name="beta")

    alpha_tools = {t.name: t for t in await manager.list_tools(alpha)}
    beta_tools = {t.name: t for t in await manager.list_tools(beta)}

    assert alpha_tools["search"].qualified_name == "alpha__search"
    assert beta_tools["search"].qualified_name == "beta__search"
    alpha_answer = await manager.call_tool(alpha, "search", {"query": "q"})
    beta_answer = await manager.call_tool(beta, "search", {"query": "q"})
    assert alpha_answer.text == "alpha results for q"
    assert beta_answer.text == "sock results for q"


async def test_connection_is_reused_from_other_event_loops_and_threads(
    manager: McpClientManager,
) -> None:
    with McpTestServer("streamable_http") as server:
        config = server.config()
        await manager.call_tool(config, "add", {"a": 1, "b": 1})

        # What async_to_sync does in a sync Django view: a new loop in another thread.
        answers: list[str] = []

        def in_other_loop() -> None:
            result = asyncio.run(manager.call_tool(config, "echo", {"text": "other loop"}))
            answers.append(result.text)

        thread = threading.Thread(target=in_other_loop)
        thread.start()
        await asyncio.to_thread(thread.join)

        assert answers == ["other loop"]
        assert await handshakes_seen(manager, config) == 1


async def test_close_drops_the_connection_and_next_call_reconnects(
    manager: McpClientManager, ws_server: McpTestServer
) -> None:
    config = ws_server.config(name="closable")
    before = await handshakes_seen(manager, config)

    await manager.close("closable")

    assert await handshakes_seen(manager, config) == before + 1


async def test_changed_config_opens_a_new_connection(manager: McpClientManager) -> None:
    first = stdio_config("edited")
    second = stdio_config("edited", timeout_s=12)
    first_pid = (await manager.call_tool(first, "pid")).text

    second_pid = (await manager.call_tool(second, "pid")).text

    assert second_pid != first_pid
    assert (await manager.call_tool(first, "pid")).text == first_pid


async def test_close_by_config_leaves_other_configs_of_the_same_name_open(
    manager: McpClientManager,
) -> None:
    tenant_a = stdio_config("shared_name", env={"TENANT": "a"})
    tenant_b = stdio_config("shared_name", env={"TENANT": "b"})
    pid_a = (await manager.call_tool(tenant_a, "pid")).text
    pid_b = (await manager.call_tool(tenant_b, "pid")).text

    await manager.close(tenant_a)

    assert (await manager.call_tool(tenant_b, "pid")).text == pid_b
    assert (await manager.call_tool(tenant_a, "pid")).text != pid_a


async def test_stdio_server_gets_given_env_and_not_the_gateways_secrets(
    manager: McpClientManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_PASSWORD", "hunter2")
    config = stdio_config("envcheck", env={"SERVER_TOKEN": "abc"})

    keys = set((await manager.call_tool(config, "env_keys")).structured["result"])

    assert {"PATH", "SERVER_TOKEN", "PYTHONPATH"} <= keys
    assert "GATEWAY_DATABASE_PASSWORD" not in keys
    assert keys <= {
        "PATH",
        "SERVER_TOKEN",
        "PYTHONPATH",
        "HOME",
        "LOGNAME",
        "SHELL",
        "TERM",
        "USER",
        "LC_CTYPE",
    }


async def test_aclose_from_another_loop_closes_everything_and_manager_restarts_lazily(
    ws_server: McpTestServer,
) -> None:
    manager = McpClientManager()
    config = ws_server.config(name="lifecycle")
    await manager.call_tool(config, "add", {"a": 1, "b": 1})

    await asyncio.to_thread(asyncio.run, manager.aclose())

    assert (await manager.call_tool(config, "add", {"a": 2, "b": 2})).text == "4"
    manager.shutdown()


async def test_concurrent_first_calls_share_one_connection(manager: McpClientManager) -> None:
    config = stdio_config("crowd")

    pids = await asyncio.gather(*(manager.call_tool(config, "pid") for _ in range(5)))

    assert len({result.text for result in pids}) == 1
    assert await handshakes_seen(manager, config) == 1


async def test_cancelled_call_leaves_the_connection_usable(
    manager: McpClientManager, ws_server: McpTestServer
) -> None:
    config = ws_server.config(name="cancelled")
    before = await handshakes_seen(manager, config)
    slow = asyncio.create_task(manager.call_tool(config, "sleep", {"seconds": 5}))
    await asyncio.sleep(0.3)

    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow

    assert (await manager.call_tool(config, "echo", {"text": "alive"})).text == "alive"
    assert await handshakes_seen(manager, config) == before
