"""Errors raised while running tools.

Plain exceptions (no Django): the dispatcher turns them into a tool result for the model
or into the shared API error shape. ``type`` is a stable snake_case code; ``status`` is
the HTTP status when a tool is run directly (POST .../execute).
"""

from __future__ import annotations

from typing import Any

from providers.core.error_base import GatewayError


class ToolError(GatewayError):
    type = "tool_error"
    status = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details or {})

    def wire_details(self) -> dict[str, Any] | None:
        # No details go on the wire as null, not as {}.
        return self.details or None


class ToolInputError(ToolError):
    """The arguments given to a tool are invalid."""

    type = "tool_input_error"
    status = 400


class SandboxUnavailableError(ToolError):
    """The sandbox cannot run here; code is never run without it."""

    type = "sandbox_unavailable"
    status = 503


class SandboxTimeoutError(ToolError):
    type = "sandbox_timeout"
    status = 504


class SandboxLimitError(ToolError):
    """Output, memory or another resource limit was exceeded."""

    type = "sandbox_limit_exceeded"
    status = 422


class SandboxExecutionError(ToolError):
    """The user's code raised, or did not produce a result."""

    type = "sandbox_execution_error"
    status = 422


class UnsafeURLError(ToolError):
    """The URL points somewhere the service must not call (scheme, credentials, address)."""

    type = "unsafe_url"
    status = 400


class OutboundRequestError(ToolError):
    """An outbound call (webhook, MCP) failed: connection error or non-2xx answer."""

    type = "outbound_request_failed"
    status = 502


class OutboundRedirectError(OutboundRequestError):
    """The server answered with a redirect: never followed (the target is unvetted)."""

    # Same type as other failed calls (502 when run directly); details carry the status.

    @property
    def redirect_status(self) -> int:
        return int(self.details.get("status", 0))


class OutboundTimeoutError(OutboundRequestError):
    type = "outbound_timeout"
    status = 504


class OutboundResponseTooLargeError(OutboundRequestError):
    type = "outbound_response_too_large"
    status = 502
