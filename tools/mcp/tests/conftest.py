"""Real MCP servers for the client tests: stdio children and HTTP/WebSocket subprocesses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.mcp import McpClientManager, McpServerConfig
from tools.mcp.testing import McpTestServer, stdio_config

TRANSPORTS = ["stdio", "streamable_http", "websocket"]


@pytest.fixture(scope="session")
def http_server() -> Iterator[McpTestServer]:
    with McpTestServer("streamable_http", name="web") as server:
        yield server


@pytest.fixture(scope="session")
def ws_server() -> Iterator[McpTestServer]:
    with McpTestServer("websocket", name="sock") as server:
        yield server


@pytest.fixture(scope="module")
def shared_manager() -> Iterator[McpClientManager]:
    # The manager runs its own loop, so one instance serves every test's event loop,
    # exactly as one per process serves every request in the product.
    manager = McpClientManager()
    yield manager
    manager.shutdown()


@pytest.fixture
async def manager() -> McpClientManager:
    manager = McpClientManager()
    yield manager
    await manager.aclose()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def server_config(transport: str, request: pytest.FixtureRequest) -> McpServerConfig:
    """A config for a running server of each transport (HTTP/WebSocket ones are shared
    by the session; stdio spawns a child per connection)."""
    if transport == "stdio":
        return stdio_config("local")
    server = request.getfixturevalue(
        "http_server" if transport == "streamable_http" else "ws_server"
    )
    return server.config()


@pytest.fixture
def fresh_server_config(transport: str) -> Iterator[McpServerConfig]:
    """A config for a server process no other test has talked to."""
    if transport == "stdio":
        yield stdio_config("fresh")
        return
    with McpTestServer(transport, name="fresh") as server:  # type: ignore[arg-type]
        yield server.config()
