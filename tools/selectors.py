"""Reads of functions and MCP servers, scoped by the caller's key.

A subtenant key sees the global entries (registered by an admin without a subtenant)
and its own; its own shadow a global entry of the same name. An admin key sees the
global entries, or one subtenant's view when it names that subtenant.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from llmwrapper.errors import ResourceNotFoundError
from tenants.models import Subtenant
from tools.models import Function, McpServer


def _visible(qs: QuerySet, subtenant: Subtenant | None) -> QuerySet:
    if subtenant is None:
        return qs.filter(subtenant__isnull=True)
    return qs.filter(Q(subtenant__isnull=True) | Q(subtenant=subtenant))


def _effective(rows: list) -> list:
    """One entry per name: a subtenant's own wins over the global one."""
    by_name: dict[str, object] = {}
    for row in sorted(rows, key=lambda r: r.subtenant_id is not None):
        by_name[row.name] = row
    return sorted(by_name.values(), key=lambda r: r.name)  # type: ignore[attr-defined]


def function_list(*, subtenant: Subtenant | None) -> list[Function]:
    return _effective(list(_visible(Function.objects.all(), subtenant)))


def function_get(*, subtenant: Subtenant | None, name: str) -> Function | None:
    rows = list(_visible(Function.objects.filter(name=name), subtenant))
    effective = _effective(rows)
    return effective[0] if effective else None


def function_owned(*, subtenant: Subtenant | None, name: str) -> Function:
    """A function the caller may delete: its own scope only."""
    function = Function.objects.filter(subtenant=subtenant, name=name).first()
    if function is None:
        raise ResourceNotFoundError(f"Function '{name}' not found.", details={"name": name})
    return function


def mcp_server_list(*, subtenant: Subtenant | None) -> list[McpServer]:
    return _effective(list(_visible(McpServer.objects.all(), subtenant)))


def mcp_server_owned(*, subtenant: Subtenant | None, name: str) -> McpServer:
    server = McpServer.objects.filter(subtenant=subtenant, name=name).first()
    if server is None:
        raise ResourceNotFoundError(f"MCP server '{name}' not found.", details={"name": name})
    return server


def mcp_tool_lookup(*, subtenant: Subtenant | None, qualified_name: str) -> tuple[McpServer, str]:
    """The server and the server's own tool name behind a qualified tool name."""
    for server in mcp_server_list(subtenant=subtenant):
        for tool in server.tools:
            if tool["qualified_name"] == qualified_name:
                return server, tool["name"]
    raise ResourceNotFoundError(
        f"MCP tool '{qualified_name}' not found.", details={"name": qualified_name}
    )
