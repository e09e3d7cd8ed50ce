"""MCP client side: server configs, a WebSocket transport and the connection manager.

Pure Python (no Django): the product builds ``McpServerConfig`` values from its stored
rows and keeps one ``McpClientManager`` per process.
"""

from tools.mcp.config import McpServerConfig
from tools.mcp.errors import (
    McpConfigError,
    McpConnectionError,
    McpError,
    McpProtocolError,
    McpTimeoutError,
    McpToolNotFoundError,
)

# The connection manager and the WebSocket transport load the MCP SDK (tens of MB):
# they are imported on first use, so configs and errors stay cheap.
_LAZY = {
    "QUALIFIED_NAME_SEPARATOR": "tools.mcp.tool_types",
    "HttpClientFactory": "tools.mcp.transports",
    "McpClientManager": "tools.mcp.manager",
    "McpTool": "tools.mcp.tool_types",
    "McpToolResult": "tools.mcp.tool_types",
    "UrlGuard": "tools.mcp.transports",
    "qualified_tool_name": "tools.mcp.tool_types",
    "websocket_client": "tools.mcp.websocket",
}


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = [
    "QUALIFIED_NAME_SEPARATOR",
    "HttpClientFactory",
    "McpClientManager",
    "McpConfigError",
    "McpConnectionError",
    "McpError",
    "McpProtocolError",
    "McpServerConfig",
    "McpTimeoutError",
    "McpTool",
    "McpToolNotFoundError",
    "McpToolResult",
    "UrlGuard",
    "qualified_tool_name",
    "websocket_client",
]
