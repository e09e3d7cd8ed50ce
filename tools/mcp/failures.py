"""Translation of SDK and transport exceptions into McpError (imports the MCP SDK;
kept apart from the error classes so that using them does not load it)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import anyio
import httpx2
from mcp import MCPError
from mcp_types import (
    CONNECTION_CLOSED,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    REQUEST_TIMEOUT,
)
from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed

from tools.mcp.errors import (
    McpConnectionError,
    McpError,
    McpProtocolError,
    McpRedirectError,
    McpTimeoutError,
    McpToolNotFoundError,
)
from tools.mcp.websocket import REDIRECT_STATUSES, WebSocketHandshakeError

if TYPE_CHECKING:
    from tools.mcp.config import McpServerConfig


# Translation of SDK and transport exceptions. Messages are built from our own words
# and the server's name; only JSON-RPC error messages the server itself chose are
# quoted, shortened.


def leaf_exception(exc: BaseException | None) -> BaseException | None:
    """The first real cause inside (nested) exception groups, skipping cancellations
    that are only the echo of a sibling task's failure."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (inner or list(exc.exceptions))[0]
    return exc


_SESSION_GONE = ("Session terminated", "Session not found")


def is_connection_loss(exc: BaseException) -> bool:
    """Whether a failed request means the connection is gone (worth one reconnect)."""
    leaf = leaf_exception(exc)
    if isinstance(leaf, MCPError):
        if leaf.code == CONNECTION_CLOSED:
            return True
        # Streamable HTTP when the server restarted and forgot our session: the SDK
        # server says "Session not found", the client's fallback "Session terminated".
        return leaf.code == INVALID_REQUEST and leaf.message in _SESSION_GONE
    return isinstance(
        leaf,
        httpx2.TransportError
        | anyio.ClosedResourceError
        | anyio.BrokenResourceError
        | anyio.EndOfStream
        | ConnectionClosed
        | OSError,  # includes ConnectionError
    )


def _server_text(message: str) -> str:
    return message if len(message) <= 300 else message[:297] + "..."


# What a refusal by the outbound guard says, by its ``details["reason"]``. Not the
# guard's own text: that names the URL's host, and the error is kept as the server's
# last error, which keys that may not see the URL can read.
_GUARD_REASONS = {
    "non_public_address": "its host resolves to a non-public address",
    "does_not_resolve": "its host does not resolve",
    "scheme_not_allowed": "its URL scheme is not allowed",
    "credentials_in_url": "its URL carries credentials",
}


def guard_reason(exc: BaseException) -> str:
    reason = (getattr(exc, "details", None) or {}).get("reason")
    return _GUARD_REASONS.get(reason, "its URL is not allowed")


def redirect_status(leaf: BaseException | None, http_status: int | None = None) -> int | None:
    """The status of a redirect answer that was refused, if that is what ``leaf`` is."""
    candidates = [getattr(leaf, "redirect_status", None), http_status]
    if isinstance(leaf, WebSocketHandshakeError):
        candidates.append(leaf.status)
    return next((s for s in candidates if s in REDIRECT_STATUSES), None)


def redirect_failure(config: McpServerConfig, status: int) -> McpRedirectError:
    # The Location is not quoted: it may name an internal host.
    return McpRedirectError(
        f"MCP server '{config.name}' answered with a redirect (HTTP {status}); redirects "
        "are not followed: register the server's final URL",
        details={"server": config.name, "transport": config.transport, "status": status},
    )


def connect_failure(
    config: McpServerConfig, exc: BaseException | None, http_status: int | None = None
) -> McpError:
    """The error for a connection that could not be opened or initialized."""
    leaf = leaf_exception(exc)
    if isinstance(leaf, McpError):
        return leaf
    redirect = redirect_status(leaf, http_status)
    if redirect is not None and not getattr(leaf, "is_guard_refusal", False):
        return redirect_failure(config, redirect)
    response = getattr(leaf, "response", None)
    status = http_status or getattr(leaf, "status", None) or getattr(response, "status_code", None)
    if getattr(leaf, "is_guard_refusal", False):
        reason = f"refused by the outbound policy: {leaf}"
    elif getattr(leaf, "type", None) == "unsafe_url":  # refused by the HTTP client's guard
        reason = f"refused by the outbound policy: {guard_reason(leaf)}"
    elif status in (401, 403):
        reason = f"the server rejected the credentials (HTTP {status})"
    elif isinstance(status, int) and status >= 400:
        reason = f"the server answered HTTP {status}"
    elif isinstance(leaf, TimeoutError | httpx2.TimeoutException):
        reason = f"no answer within {config.timeout_s:g}s"
    elif config.transport == "stdio" and isinstance(leaf, FileNotFoundError | PermissionError):
        reason = "the command could not be started"
    elif isinstance(leaf, MCPError):
        reason = f"the handshake failed: {_server_text(leaf.message)}"
    elif isinstance(leaf, WebSocketHandshakeError):
        reason = str(leaf)  # our own wording, already clean
    elif isinstance(leaf, httpx2.TransportError | OSError):
        reason = "the server is unreachable (connection refused or failed)"
    else:
        reason = f"unexpected {type(leaf).__name__}" if leaf else "unknown error"
    return McpConnectionError(
        f"Could not connect to MCP server '{config.name}': {reason}",
        details={"server": config.name, "transport": config.transport},
    )


def op_failure(
    config: McpServerConfig, exc: BaseException, http_status: int | None = None
) -> McpError:
    """The error for a request that failed on an open connection (not by a lost one)."""
    leaf = leaf_exception(exc)
    details = {"server": config.name}
    if isinstance(leaf, McpError):
        return leaf
    redirect = redirect_status(leaf, http_status)
    if redirect is not None:
        return redirect_failure(config, redirect)
    if isinstance(leaf, MCPError):
        if leaf.code == REQUEST_TIMEOUT:
            return McpTimeoutError(
                f"MCP server '{config.name}' did not answer in time", details=details
            )
        text = _server_text(leaf.message)
        if leaf.code in (METHOD_NOT_FOUND, INVALID_PARAMS) and "unknown tool" in text.lower():
            return McpToolNotFoundError(f"MCP server '{config.name}': {text}", details=details)
        return McpProtocolError(
            f"MCP server '{config.name}' answered with error {leaf.code}: {text}",
            details={**details, "code": leaf.code},
        )
    if isinstance(leaf, ValidationError):
        return McpProtocolError(
            f"MCP server '{config.name}' sent a malformed result", details=details
        )
    return McpProtocolError(
        f"Request to MCP server '{config.name}' failed: unexpected {type(leaf).__name__}",
        details=details,
    )
