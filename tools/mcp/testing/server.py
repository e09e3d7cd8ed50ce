"""The test server itself: an ``MCPServer`` and the tools it offers."""

from __future__ import annotations

import base64
import os
from typing import Any

import anyio
import mcp_types
from mcp.server.mcpserver import MCPServer

from tools.mcp.testing.media import TINY_PDF, TINY_PNG

HandshakeMethods = ("initialize", "server/discover")


class _HandshakeCounter:
    """Middleware counting the initialize/server-discover requests it sees."""

    def __init__(self) -> None:
        self.seen = 0

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        if ctx.method in HandshakeMethods:
            self.seen += 1
        return await call_next(ctx)


def build_server(name: str = "test") -> MCPServer:
    """The test server named ``name``, with every tool registered."""
    handshakes = _HandshakeCounter()
    server = MCPServer(name, log_level="WARNING", middleware=[handshakes])
    _add_basic_tools(server, name)
    _add_media_tool(server)
    _add_diagnostic_tools(server, handshakes)
    return server


def _add_basic_tools(server: MCPServer, name: str) -> None:
    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def search(query: str) -> str:
        """Pretend to search; the answer names the server."""
        return f"{name} results for {query}"

    @server.tool()
    def fail() -> str:
        """Always raises."""
        raise RuntimeError("this tool always fails")

    @server.tool()
    async def sleep(seconds: float) -> str:
        """Wait, then answer (for timeout tests)."""
        await anyio.sleep(seconds)
        return "done"


def _add_media_tool(server: MCPServer) -> None:
    @server.tool()
    def media() -> mcp_types.CallToolResult:
        """A chart, the report behind it, notes and a link to the raw data."""
        return mcp_types.CallToolResult(
            content=[
                mcp_types.TextContent(type="text", text="Q3 sales: chart and report."),
                mcp_types.ImageContent(
                    type="image", data=base64.b64encode(TINY_PNG).decode(), mime_type="image/png"
                ),
                mcp_types.EmbeddedResource(
                    type="resource",
                    resource=mcp_types.BlobResourceContents(
                        uri="file:///reports/q3.pdf",
                        mime_type="application/pdf",
                        blob=base64.b64encode(TINY_PDF).decode(),
                    ),
                ),
                mcp_types.EmbeddedResource(
                    type="resource",
                    resource=mcp_types.TextResourceContents(
                        uri="file:///notes/q3.txt", mime_type="text/plain", text="Up 12% on Q2."
                    ),
                ),
                mcp_types.ResourceLink(
                    type="resource_link",
                    uri="https://data.example.com/q3.csv",
                    name="q3.csv",
                    mime_type="text/csv",
                ),
            ]
        )


def _add_diagnostic_tools(server: MCPServer, handshakes: _HandshakeCounter) -> None:
    @server.tool()
    def handshakes_seen() -> int:
        """How many initialize/server-discover requests this process has answered."""
        return handshakes.seen

    @server.tool()
    def pid() -> int:
        """This server's process id."""
        return os.getpid()

    @server.tool()
    def env_keys() -> list[str]:
        """Names of the environment variables this server was started with."""
        return sorted(os.environ)
