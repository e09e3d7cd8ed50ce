"""Registering, removing and running functions and MCP servers."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from llmwrapper.errors import (
    PermissionDeniedError,
    ResourceConflictError,
    ResourceNotFoundError,
    ValidationFailedError,
)
from llmwrapper.secrets import mask, seal
from tenants.models import ApiKey, Subtenant
from tools import netguard, runtime, selectors
from tools.builtins import BUILTINS
from tools.mcp.config import McpServerConfig
from tools.mcp.errors import McpConfigError, McpError, McpRedirectError
from tools.models import Function, McpServer
from tools.source_functions import FUNCTION_SOURCE
from tools.source_mcp import MCP_SOURCE


def _scope_id(owner: Subtenant | None) -> object | None:
    return owner.pk if owner is not None else None


def function_register(*, key: ApiKey, owner: Subtenant | None, data: dict[str, Any]) -> Function:
    """Store a function; `data` is validated by the API serializer."""
    name = data["name"]
    if name in BUILTINS:
        raise ResourceConflictError(f"'{name}' is a built-in function.", details={"name": name})
    if data.get("code"):
        if not settings.CODE_FUNCTIONS_ENABLED:
            raise PermissionDeniedError("Code functions are turned off on this service.")
        if not key.is_admin:
            raise PermissionDeniedError("Registering a code function needs an admin key.")
        kind = Function.Kind.CODE
    else:
        netguard.check_url(data["url"], runtime.outbound_policy(data["url"]))
        kind = Function.Kind.WEBHOOK
    FUNCTION_SOURCE.invalidate(subtenant_id=_scope_id(owner))
    try:
        with transaction.atomic():
            return Function.objects.create(
                subtenant=owner,
                name=name,
                description=data.get("description", ""),
                parameters=data["parameters"],
                kind=kind,
                code=data.get("code", ""),
                entrypoint=data.get("entrypoint", ""),
                url=data.get("url", ""),
                headers_sealed=seal(data.get("headers")),
                timeout_s=data.get("timeout_s", 10),
                created_by=key,
            )
    except IntegrityError as exc:
        raise ResourceConflictError(
            f"A function named '{name}' is already registered.", details={"name": name}
        ) from exc


def function_delete(*, owner: Subtenant | None, name: str) -> None:
    if name in BUILTINS:
        raise PermissionDeniedError(f"'{name}' is a built-in function and cannot be removed.")
    selectors.function_owned(subtenant=owner, name=name).delete()
    FUNCTION_SOURCE.invalidate(subtenant_id=_scope_id(owner))


async def function_execute(*, subtenant: Subtenant | None, name: str, arguments: dict) -> Any:
    function = await sync_to_async(selectors.function_get)(subtenant=subtenant, name=name)
    if function is None and name not in BUILTINS:
        raise ResourceNotFoundError(f"Function '{name}' not found.", details={"name": name})
    return await runtime.run_named(name, function, arguments)


def mcp_config_from(data: dict[str, Any]) -> McpServerConfig:
    try:
        return McpServerConfig.from_dict(data)
    except McpConfigError as exc:
        raise ValidationFailedError(exc.message, details=exc.details or None) from exc


async def mcp_server_register(
    *, key: ApiKey, owner: Subtenant | None, data: dict[str, Any]
) -> McpServer:
    """Connect to the server, list its tools, and store it. Nothing is stored on failure."""
    config = mcp_config_from(data)
    if config.transport == "stdio" and not key.is_admin:
        raise PermissionDeniedError("stdio MCP servers run a command here: admin keys only.")
    exists = await McpServer.objects.filter(subtenant=owner, name=config.name).aexists()
    if exists:
        raise ResourceConflictError(
            f"An MCP server named '{config.name}' is already registered.",
            details={"name": config.name},
        )
    if config.url:
        # A refused URL is the caller's mistake (400), not an unreachable server (502).
        await netguard.acheck_url(config.url, runtime.outbound_policy(config.url))
    try:
        tools = await runtime.mcp_manager().probe(config)
    except McpRedirectError as exc:
        # The URL given is not where the server answers: the caller's to fix (4xx).
        raise McpRedirectError(exc.message, details=exc.details, status=400) from None
    secrets = {
        "api_key": config.api_key,
        "headers": dict(config.headers) or None,
        "env": dict(config.env) if config.env else None,
    }
    MCP_SOURCE.invalidate(subtenant_id=_scope_id(owner))
    try:
        return await McpServer.objects.acreate(
            subtenant=owner,
            name=config.name,
            transport=config.transport,
            url=config.url or "",
            command=config.command or "",
            args=list(config.args),
            secrets_sealed=seal({k: v for k, v in secrets.items() if v}),
            api_key_hint=mask(config.api_key) or "",
            timeout_s=config.timeout_s,
            status=McpServer.Status.CONNECTED,
            tools=[asdict(t) for t in tools],
            last_checked_at=timezone.now(),
            created_by=key,
        )
    except IntegrityError as exc:
        raise ResourceConflictError(
            f"An MCP server named '{config.name}' is already registered.",
            details={"name": config.name},
        ) from exc


async def mcp_server_delete(*, owner: Subtenant | None, name: str) -> None:
    server = await sync_to_async(selectors.mcp_server_owned)(subtenant=owner, name=name)
    await runtime.mcp_manager().close(runtime.mcp_config(server))
    await server.adelete()
    MCP_SOURCE.invalidate(subtenant_id=_scope_id(owner))


async def mcp_tools_refresh(server: McpServer) -> list[dict[str, Any]]:
    """List the server's tools now; remember them, or the error, on the row."""
    try:
        tools = [
            asdict(t) for t in await runtime.mcp_manager().list_tools(runtime.mcp_config(server))
        ]
    except McpError as exc:
        server.status, server.last_error = McpServer.Status.ERROR, exc.message
        await server.asave(update_fields=["status", "last_error", "updated_at"])
        return server.tools
    if tools != server.tools:
        MCP_SOURCE.invalidate(subtenant_id=server.subtenant_id)
    server.status, server.last_error, server.tools = McpServer.Status.CONNECTED, "", tools
    server.last_checked_at = timezone.now()
    await server.asave(
        update_fields=["status", "last_error", "tools", "last_checked_at", "updated_at"]
    )
    return tools


async def mcp_tool_execute(
    *, subtenant: Subtenant | None, qualified_name: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    server, tool = await sync_to_async(selectors.mcp_tool_lookup)(
        subtenant=subtenant, qualified_name=qualified_name
    )
    result = await runtime.run_mcp_tool(server, tool, arguments)
    return {
        "name": qualified_name,
        "server": server.name,
        "is_error": result.is_error,
        "content": result.content,
        "structured": result.structured,
        "text": result.text,
    }
