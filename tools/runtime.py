"""Running tools: built-ins, sandboxed code, webhooks and MCP tools.

Process-wide singletons (the sandbox with its concurrency limit, the MCP connection
manager) live here; everything they need comes from the database and settings, so
every process behaves the same.
"""

from __future__ import annotations

import asyncio
import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings

from llmwrapper.secrets import unseal
from tools import netguard
from tools.builtins import BUILTINS, BuiltinTool
from tools.mcp.config import McpServerConfig

if TYPE_CHECKING:
    from tools.mcp.manager import McpClientManager
    from tools.mcp.tool_types import McpToolResult
from tools.models import Function, McpServer
from tools.sandbox import Sandbox, SandboxLimits
from tools.schema import validate_arguments


@lru_cache(maxsize=1)
def sandbox() -> Sandbox:
    return Sandbox(
        limits=SandboxLimits(
            timeout_s=settings.SANDBOX_TIMEOUT,
            memory_mb=settings.SANDBOX_MEMORY_MB,
            max_procs=settings.SANDBOX_MAX_PROCS,
            fallback_max_procs=settings.SANDBOX_FALLBACK_MAX_PROCS,
        ),
        max_concurrent=settings.SANDBOX_MAX_CONCURRENT,
        limit_mode=settings.SANDBOX_LIMIT_MODE,
    )


def outbound_policy(url: str) -> netguard.OutboundPolicy:
    """https everywhere; plain http only towards a host the operator allowlisted."""
    allowed = tuple(settings.OUTBOUND_ALLOWED_HOSTS)
    host = (urlsplit(url).hostname or "").lower()
    schemes: tuple[str, ...] = ("https",)
    if host and _allowlisted(host, allowed):
        schemes = ("https", "http", "ws", "wss")
    elif urlsplit(url).scheme in ("ws", "wss"):
        schemes = ("wss",)
    return netguard.OutboundPolicy(
        allow_private_hosts=allowed,
        allowed_schemes=schemes,
        timeout_s=settings.OUTBOUND_TIMEOUT,
        max_response_bytes=settings.OUTBOUND_MAX_RESPONSE_BYTES,
        ca_file=settings.OUTBOUND_CA_FILE or None,
    )


def _allowlisted(host: str, allowed: tuple[str, ...]) -> bool:
    for entry in allowed:
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            if entry.lower().rstrip(".") == host.rstrip("."):
                return True
    return False


async def run_builtin(tool: BuiltinTool, arguments: dict[str, Any]) -> Any:
    return await asyncio.to_thread(tool.invoke, arguments)


async def run_function(function: Function, arguments: dict[str, Any]) -> Any:
    """Validate the arguments against the function's schema, then run it."""
    validate_arguments(arguments, function.parameters)
    if function.kind == Function.Kind.CODE:
        return await sandbox().run(
            function.code, arguments, function_name=function.entrypoint or None
        )
    return await netguard.post_json(
        function.url,
        {"name": function.name, "arguments": arguments},
        policy=outbound_policy(function.url),
        headers=unseal(function.headers_sealed, {}),
    )


async def run_named(name: str, function: Function | None, arguments: dict[str, Any]) -> Any:
    if function is None:
        return await run_builtin(BUILTINS[name], arguments)
    return await run_function(function, arguments)


# MCP: one manager per process; HTTP and WebSocket URLs go through the outbound guard.


async def _url_guard(url: str) -> list[str]:
    # The vetted addresses: the manager pins WebSocket connections to them.
    return await netguard.acheck_url(url, outbound_policy(url))


@lru_cache(maxsize=1)
def mcp_manager() -> McpClientManager:
    # Imported here: the MCP SDK is loaded only by processes that use MCP servers.
    from tools.mcp.manager import McpClientManager

    return McpClientManager(
        http_client_factory=_guarded_http_client,
        url_guard=_url_guard,
    )


def _guarded_http_client(headers: dict | None = None, timeout: Any = None, auth: Any = None):  # type: ignore[no-untyped-def]
    # The scheme rule was applied to the server URL by `_url_guard` before connecting;
    # this client re-checks every address it connects to (redirects, DNS rebinding).
    policy = netguard.OutboundPolicy(
        allow_private_hosts=tuple(settings.OUTBOUND_ALLOWED_HOSTS),
        allowed_schemes=("https", "http"),
        ca_file=settings.OUTBOUND_CA_FILE or None,
    )
    options: dict[str, Any] = {"headers": headers or {}, "follow_redirects": False}
    if timeout is not None:
        options["timeout"] = timeout
    if auth is not None:
        options["auth"] = auth
    return netguard.make_guarded_client_httpx2(policy, **options)


def mcp_config(server: McpServer) -> McpServerConfig:
    secrets = unseal(server.secrets_sealed, {})
    return McpServerConfig(
        name=server.name,
        transport=server.transport,  # type: ignore[arg-type]
        url=server.url or None,
        command=server.command or None,
        args=tuple(server.args),
        env=secrets.get("env"),
        headers=secrets.get("headers") or {},
        api_key=secrets.get("api_key"),
        timeout_s=server.timeout_s,
    )


async def run_mcp_tool(server: McpServer, tool: str, arguments: dict[str, Any]) -> McpToolResult:
    return await mcp_manager().call_tool(mcp_config(server), tool, arguments)
