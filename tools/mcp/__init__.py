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
from tools.mcp.manager import (
    QUALIFIED_NAME_SEPARATOR,
    HttpClientFactory,
    McpClientManager,
    McpTool,
    McpToolResult,
    UrlGuard,
    qualified_tool_name,
)
from tools.mcp.websocket import websocket_client

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
