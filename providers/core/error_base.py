"""The one base of every error the gateway answers with.

Django-free, so the provider core, the tools and the MCP client can subclass it as well
as the Django side. Each family keeps its own constructor; all of them carry a stable
snake_case `type`, a `message`, the HTTP `status` to answer with, `details` and the
`headers` to send along (e.g. `Retry-After`). `to_dict()` is the product's error shape
(without the outer "error" key), the same for JSON bodies, SSE and WebSocket frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class GatewayError(Exception):
    type: str = "error"
    status: int = 500
    # Read-only default: families with headers set their own (attribute or property).
    headers: Mapping[str, str] = MappingProxyType({})

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "details": self.wire_details()}

    def wire_details(self) -> Any:
        """`details` as the client sees them; a family may add to them or normalize them."""
        return self.details
