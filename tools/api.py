"""`/api/v1/functions` and `/api/v1/mcp`: register, list, remove and run tools."""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import sync_to_async
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from llmwrapper.api import StrictSerializer, listing, principal
from llmwrapper.async_views import AsyncAPIView
from llmwrapper.secrets import unseal
from llmwrapper.tenancy import tool_scope
from tools import selectors, services
from tools.builtins import BUILTINS
from tools.models import Function, McpServer
from tools.netguard import redact_url
from tools.schema import NAME_RE, normalize_parameters

SUBTENANT_PARAM = OpenApiParameter(
    "subtenant",
    OpenApiTypes.UUID,
    description="Admin keys: act on this subtenant's tools instead of the global ones.",
)


class FunctionRegisterSerializer(StrictSerializer):
    name = serializers.RegexField(NAME_RE.pattern, max_length=64)
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=4000, default=""
    )
    parameters = serializers.JSONField(
        required=False,
        help_text="A list of {name, type, description, required} or a JSON Schema object.",
    )
    code = serializers.CharField(required=False, max_length=100_000, trim_whitespace=False)
    entrypoint = serializers.RegexField(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", required=False)
    url = serializers.URLField(required=False, max_length=2000)
    headers = serializers.DictField(child=serializers.CharField(max_length=4000), required=False)
    timeout_s = serializers.FloatField(required=False, min_value=0.1, max_value=120)
    subtenant = serializers.UUIDField(
        required=False, help_text="Admin keys: register for one subtenant."
    )

    def validate_parameters(self, value: Any) -> dict:
        try:
            return normalize_parameters(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("code")) == bool(attrs.get("url")):
            raise serializers.ValidationError({"code": ["Give either 'code' or a webhook 'url'."]})
        attrs.setdefault("parameters", normalize_parameters(None))
        return attrs


def function_row(function: Function | None, name: str, *, admin: bool) -> dict[str, Any]:
    """A function as the caller may see it. A global function is admin data: a
    subtenant key sees what a model sees (name, description, parameters), never where it
    runs. URLs are shown redacted (no userinfo, query values masked), to admins too."""
    if function is None:
        tool = BUILTINS[name]
        return {
            "name": name,
            "description": tool.description,
            "parameters": tool.parameters,
            "kind": "builtin",
            "subtenant": None,
        }
    row = {
        "name": function.name,
        "description": function.description,
        "parameters": function.parameters,
        "kind": function.kind,
        "subtenant": str(function.subtenant_id) if function.subtenant_id else None,
    }
    if function.subtenant_id is None and not admin:
        return row
    row.update(timeout_s=function.timeout_s, created_at=function.created_at)
    if function.kind == Function.Kind.WEBHOOK:
        row["url"] = redact_url(function.url)
        row["has_headers"] = bool(function.headers_sealed)
    return row


_HIDDEN_FOR_GLOBAL = "Absent when a subtenant key reads a global (admin-registered) entry."


class FunctionOutSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    parameters = serializers.DictField(help_text="JSON Schema of the arguments.")
    kind = serializers.ChoiceField(choices=["builtin", "code", "webhook"])
    subtenant = serializers.UUIDField(allow_null=True)
    url = serializers.CharField(
        required=False,
        help_text="Webhooks: the URL without userinfo, query values shown as '***'. "
        + _HIDDEN_FOR_GLOBAL,
    )
    has_headers = serializers.BooleanField(
        required=False, help_text="Webhooks: whether headers are stored. " + _HIDDEN_FOR_GLOBAL
    )
    timeout_s = serializers.FloatField(required=False, help_text=_HIDDEN_FOR_GLOBAL)
    created_at = serializers.DateTimeField(required=False, help_text=_HIDDEN_FOR_GLOBAL)


FUNCTION = FunctionOutSerializer


class FunctionListView(APIView):
    @extend_schema(
        parameters=[SUBTENANT_PARAM],
        responses={200: listing("FunctionList", FUNCTION(many=True))},
        tags=["functions"],
    )
    def get(self, request: Request) -> Response:
        """Built-in and registered functions available to the caller."""
        scope, admin = tool_scope(request), principal(request).is_admin
        rows = [function_row(None, name, admin=admin) for name in BUILTINS]
        rows += [
            function_row(f, f.name, admin=admin)
            for f in selectors.function_list(subtenant=scope)
            if f.name not in BUILTINS
        ]
        return Response({"count": len(rows), "results": rows})


class FunctionRegisterView(APIView):
    @extend_schema(
        request=FunctionRegisterSerializer, responses={201: FUNCTION}, tags=["functions"]
    )
    def post(self, request: Request) -> Response:
        """Register a code function (admin keys) or a webhook function."""
        serializer = FunctionRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        owner = tool_scope(request, data.pop("subtenant", None))
        function = services.function_register(key=principal(request).key, owner=owner, data=data)
        row = function_row(function, function.name, admin=principal(request).is_admin)
        return Response(row, status=status.HTTP_201_CREATED)


class FunctionDetailView(APIView):
    @extend_schema(parameters=[SUBTENANT_PARAM], responses={204: None}, tags=["functions"])
    def delete(self, request: Request, name: str) -> Response:
        """Unregister one of the caller's functions."""
        services.function_delete(owner=tool_scope(request), name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)


def arguments_of(body: Any) -> dict[str, Any]:
    """`{"arguments": {...}}`, or the body itself as the arguments."""
    if (
        isinstance(body, dict)
        and set(body) == {"arguments"}
        and isinstance(body["arguments"], dict)
    ):
        return body["arguments"]
    if not isinstance(body, dict):
        raise serializers.ValidationError({"arguments": ["Must be a JSON object."]})
    return dict(body)


EXECUTE_REQUEST = inline_serializer("ToolArguments", {"arguments": serializers.DictField()})


class FunctionExecuteView(AsyncAPIView):
    @extend_schema(
        parameters=[SUBTENANT_PARAM],
        request=EXECUTE_REQUEST,
        responses={
            200: inline_serializer(
                "FunctionResult",
                {
                    "name": serializers.CharField(),
                    "result": serializers.JSONField(),
                    "latency_ms": serializers.IntegerField(),
                },
            )
        },
        tags=["functions"],
    )
    async def post(self, request: Request, name: str) -> Response:
        """Run a function with the given arguments (validated against its schema)."""
        scope = await sync_to_async(tool_scope)(request)
        arguments = arguments_of(request.data)
        started = time.perf_counter()
        result = await services.function_execute(subtenant=scope, name=name, arguments=arguments)
        return Response(
            {
                "name": name,
                "result": result,
                "latency_ms": int((time.perf_counter() - started) * 1000),
            }
        )


class McpServerRegisterSerializer(StrictSerializer):
    name = serializers.RegexField(r"^[a-zA-Z0-9_-]{1,40}$")
    protocol = serializers.CharField(
        required=False, max_length=32, help_text="websocket, http, sse or stdio"
    )
    transport = serializers.CharField(required=False, max_length=32)
    url = serializers.CharField(required=False, max_length=2000)
    api_key = serializers.CharField(required=False, max_length=4000, write_only=True)
    headers = serializers.DictField(child=serializers.CharField(max_length=4000), required=False)
    command = serializers.CharField(required=False, max_length=500)
    args = serializers.ListField(
        child=serializers.CharField(max_length=2000), required=False, max_length=100
    )
    env = serializers.DictField(child=serializers.CharField(max_length=4000), required=False)
    timeout = serializers.FloatField(required=False, min_value=0.5, max_value=300)
    subtenant = serializers.UUIDField(required=False)


def mcp_server_row(server: McpServer, *, admin: bool) -> dict[str, Any]:
    """A server as the caller may see it: as for functions, a global server's URL,
    credentials and command stay with admins, and URLs are shown redacted."""
    row: dict[str, Any] = {
        "name": server.name,
        "transport": server.transport,
        "subtenant": str(server.subtenant_id) if server.subtenant_id else None,
        "status": server.status,
        "last_error": server.last_error or None,
        "tools": [t["qualified_name"] for t in server.tools],
        "last_checked_at": server.last_checked_at,
        "created_at": server.created_at,
    }
    if server.subtenant_id is None and not admin:
        return row
    secrets = unseal(server.secrets_sealed, {})
    row.update(
        url=redact_url(server.url) if server.url else None,
        api_key=server.api_key_hint or None,
        headers={name: "****" for name in (secrets.get("headers") or {})},
    )
    if admin and server.transport == McpServer.Transport.STDIO:
        row["command"], row["args"] = server.command, server.args
    return row


class McpServerOutSerializer(serializers.Serializer):
    name = serializers.CharField()
    transport = serializers.CharField()
    url = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Without userinfo, query values shown as '***'; null for stdio. "
        + _HIDDEN_FOR_GLOBAL,
    )
    subtenant = serializers.UUIDField(allow_null=True)
    status = serializers.ChoiceField(choices=["connected", "error"])
    last_error = serializers.CharField(allow_null=True)
    api_key = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Masked: never returned in full. " + _HIDDEN_FOR_GLOBAL,
    )
    headers = serializers.DictField(
        required=False, help_text="Header names; values masked. " + _HIDDEN_FOR_GLOBAL
    )
    tools = serializers.ListField(child=serializers.CharField())
    last_checked_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    command = serializers.CharField(required=False, help_text="stdio servers, admin keys only.")
    args = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="stdio servers, admin keys only."
    )


MCP_SERVER = McpServerOutSerializer


class McpServersView(AsyncAPIView):
    @extend_schema(
        parameters=[SUBTENANT_PARAM],
        responses={200: listing("McpServerList", MCP_SERVER(many=True))},
        tags=["mcp"],
    )
    async def get(self, request: Request) -> Response:
        """Registered MCP servers with their status, last error and tools."""

        def rows() -> list[dict[str, Any]]:
            admin = principal(request).is_admin
            scope = tool_scope(request)
            return [
                mcp_server_row(s, admin=admin) for s in selectors.mcp_server_list(subtenant=scope)
            ]

        results = await sync_to_async(rows)()
        return Response({"count": len(results), "results": results})

    @extend_schema(request=McpServerRegisterSerializer, responses={201: MCP_SERVER}, tags=["mcp"])
    async def post(self, request: Request) -> Response:
        """Connect to an MCP server: it is validated (handshake, tool list) before it is stored."""
        serializer = McpServerRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        owner = await sync_to_async(tool_scope)(request, data.pop("subtenant", None))
        server = await services.mcp_server_register(
            key=principal(request).key, owner=owner, data=data
        )
        row = mcp_server_row(server, admin=principal(request).is_admin)
        return Response(row, status=status.HTTP_201_CREATED)


class McpServerDetailView(AsyncAPIView):
    @extend_schema(parameters=[SUBTENANT_PARAM], responses={204: None}, tags=["mcp"])
    async def delete(self, request: Request, name: str) -> Response:
        """Disconnect from and remove an MCP server."""
        owner = await sync_to_async(tool_scope)(request)
        await services.mcp_server_delete(owner=owner, name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)


class McpToolsView(AsyncAPIView):
    @extend_schema(
        parameters=[SUBTENANT_PARAM],
        responses={
            200: listing(
                "McpToolList",
                inline_serializer(
                    "McpTool",
                    {
                        "name": serializers.CharField(
                            help_text="<server>__<tool>, as offered to models"
                        ),
                        "server": serializers.CharField(),
                        "tool": serializers.CharField(),
                        "description": serializers.CharField(),
                        "input_schema": serializers.DictField(),
                    },
                    many=True,
                ),
            )
        },
        tags=["mcp"],
    )
    async def get(self, request: Request) -> Response:
        """Tools of every available MCP server, listed live (cached list if a server is down)."""
        scope = await sync_to_async(tool_scope)(request)
        servers = await sync_to_async(selectors.mcp_server_list)(subtenant=scope)
        rows = []
        for server in servers:
            for tool in await services.mcp_tools_refresh(server):
                rows.append(
                    {
                        "name": tool["qualified_name"],
                        "server": server.name,
                        "tool": tool["name"],
                        "description": tool.get("description") or "",
                        "input_schema": tool["input_schema"],
                        "server_status": server.status,
                    }
                )
        return Response({"count": len(rows), "results": rows})


class McpToolExecuteView(AsyncAPIView):
    @extend_schema(
        parameters=[SUBTENANT_PARAM],
        request=EXECUTE_REQUEST,
        responses={
            200: inline_serializer(
                "McpToolResult",
                {
                    "name": serializers.CharField(),
                    "server": serializers.CharField(),
                    "is_error": serializers.BooleanField(),
                    "content": serializers.ListField(child=serializers.DictField()),
                    "structured": serializers.DictField(allow_null=True),
                    "text": serializers.CharField(),
                },
            )
        },
        tags=["mcp"],
    )
    async def post(self, request: Request, name: str) -> Response:
        """Call an MCP tool by its qualified name (`<server>__<tool>`)."""
        scope = await sync_to_async(tool_scope)(request)
        result = await services.mcp_tool_execute(
            subtenant=scope, qualified_name=name, arguments=arguments_of(request.data)
        )
        return Response(result)
