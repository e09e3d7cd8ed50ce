"""Errors raised by the MCP client.

They subclass the project's Django-free error base (a snake_case ``type``, an HTTP-ish
``status``, a ``message`` and optional ``details``), so the API layer renders them as
``{"error": {"type": ..., "message": ..., "details": ...}}`` as they are.
Messages name the server by its configured name only: URLs, headers, commands and
arguments can carry credentials and never appear in them.
"""

from __future__ import annotations

from typing import Any

from providers.core.error_base import GatewayError


class McpError(GatewayError):
    """Base class of every error the MCP client raises."""

    type = "mcp_error"
    status = 502

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, details=details or {})
        if status is not None:  # the same failure can be the caller's fault in one place
            self.status = status


class McpConfigError(McpError, ValueError):
    """The server configuration is incomplete or inconsistent."""

    type = "mcp_config_invalid"
    status = 400


class McpConnectionError(McpError):
    """The server could not be reached, refused us, or failed the handshake."""

    type = "mcp_connection_error"
    status = 502


class McpRedirectError(McpConnectionError):
    """The server answered with an HTTP redirect; redirects are never followed, on any
    transport (the target was not vetted). Registering the final URL fixes it."""

    type = "mcp_redirect_refused"
    status = 502


class McpToolNotFoundError(McpError):
    """The server does not offer a tool of that name."""

    type = "mcp_tool_not_found"
    status = 404


class McpTimeoutError(McpError):
    """The server did not answer a request in time."""

    type = "mcp_timeout"
    status = 504


class McpProtocolError(McpError):
    """The server answered with a JSON-RPC error or a message we cannot use."""

    type = "mcp_protocol_error"
    status = 502
