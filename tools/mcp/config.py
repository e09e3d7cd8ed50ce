"""How to reach one MCP server: a frozen value the product builds from its stored row."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from tools.mcp.errors import McpConfigError

Transport = Literal["stdio", "sse", "streamable_http", "websocket"]
TRANSPORTS: tuple[str, ...] = get_args(Transport)

# The seed README spells it "protocol" with these values; the SDK says "streamable_http".
_TRANSPORT_ALIASES: dict[str, str] = {
    "stdio": "stdio",
    "sse": "sse",
    "http": "streamable_http",
    "https": "streamable_http",
    "streamable_http": "streamable_http",
    "streamable-http": "streamable_http",
    "streamablehttp": "streamable_http",
    "websocket": "websocket",
    "websockets": "websocket",
    "ws": "websocket",
    "wss": "websocket",
}
_URL_SCHEMES: dict[str, tuple[str, ...]] = {
    "sse": ("http", "https"),
    "streamable_http": ("http", "https"),
    "websocket": ("ws", "wss"),
}


@dataclass(frozen=True)
class McpServerConfig:
    """Connection settings of one MCP server.

    ``api_key`` is sent as ``Authorization: Bearer <key>`` on HTTP and WebSocket
    transports (it wins over an ``Authorization`` entry in ``headers``). ``env`` is
    added to the minimal environment a stdio server gets; the gateway's own
    environment, with its secrets, is never inherited. Secrets stay out of ``repr``.
    """

    name: str
    transport: Transport
    url: str | None = None
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 30

    def __post_init__(self) -> None:
        # Copies, so a caller mutating its dict cannot change a config already in use.
        object.__setattr__(self, "args", tuple(str(a) for a in self.args))
        object.__setattr__(self, "headers", {str(k): str(v) for k, v in self.headers.items()})
        if self.env is not None:
            object.__setattr__(self, "env", {str(k): str(v) for k, v in self.env.items()})
        self._validate()

    def _validate(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise McpConfigError("MCP server name is required")
        if self.transport not in TRANSPORTS:
            raise McpConfigError(
                f"MCP server '{self.name}': transport must be one of {', '.join(TRANSPORTS)}"
            )
        if not self.timeout_s or self.timeout_s <= 0:
            raise McpConfigError(f"MCP server '{self.name}': timeout_s must be positive")
        if self.transport == "stdio":
            if not self.command:
                raise McpConfigError(f"MCP server '{self.name}': stdio needs a command")
            return
        if not self.url:
            raise McpConfigError(f"MCP server '{self.name}': {self.transport} needs a url")
        parts = urlsplit(self.url)
        schemes = _URL_SCHEMES[self.transport]
        if parts.scheme not in schemes or not parts.hostname:
            raise McpConfigError(
                f"MCP server '{self.name}': {self.transport} needs a {' or '.join(schemes)} url"
            )

    def __hash__(self) -> int:
        # The generated hash would choke on the dict fields.
        return hash(self.fingerprint())

    def fingerprint(self) -> str:
        """A digest of every field: it changes whenever a stored config is edited, so the
        manager knows to open a new connection instead of reusing the old one."""
        payload = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def request_headers(self) -> dict[str, str]:
        """Headers for HTTP and WebSocket transports, with the api_key as a Bearer token."""
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        auth = next((v for k, v in self.headers.items() if k.lower() == "authorization"), None)
        if self.api_key:
            auth = f"Bearer {self.api_key}"
        if auth:
            headers["Authorization"] = auth
        return headers

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> McpServerConfig:
        """Build from stored or posted JSON.

        Accepts ``transport`` or the seed's ``protocol`` ("websocket", "http", "sse",
        "stdio", also "streamable_http"); without either, the URL scheme or a
        ``command`` decides. ``timeout`` is accepted for ``timeout_s``; other keys are
        ignored so a stored row can carry extra fields.
        """
        raw = data.get("transport") or data.get("protocol")
        if raw is None:
            raw = _infer_transport(data)
        transport = _TRANSPORT_ALIASES.get(str(raw).strip().lower())
        name = str(data.get("name") or "")
        if transport is None:
            raise McpConfigError(f"MCP server '{name}': unknown protocol {str(raw)[:40]!r}")
        args = data.get("args") or ()
        if isinstance(args, str):
            # A single string would otherwise be split into characters.
            raise McpConfigError(f"MCP server '{name}': args must be a list of strings")
        timeout = data.get("timeout_s", data.get("timeout"))
        try:
            timeout_s = float(timeout) if timeout is not None else 30.0
        except (TypeError, ValueError):
            raise McpConfigError(f"MCP server '{name}': timeout must be a number") from None
        return cls(
            name=name,
            transport=transport,  # type: ignore[arg-type]
            url=data.get("url") or None,
            command=data.get("command") or None,
            args=tuple(args),
            env=data.get("env") or None,
            headers=data.get("headers") or {},
            api_key=data.get("api_key") or None,
            timeout_s=timeout_s,
        )


def _infer_transport(data: Mapping[str, Any]) -> str:
    if data.get("command"):
        return "stdio"
    scheme = urlsplit(str(data.get("url") or "")).scheme.lower()
    return scheme or "missing"
