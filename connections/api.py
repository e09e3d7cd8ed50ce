"""`/api/v1/connections` and `/api/v1/routes`: stored provider endpoints and the public
model names spread over them.

Scope as for functions and MCP servers: an admin key acts on the global ones, or on a
subtenant's with `subtenant` (a body field on create, a query parameter otherwise); a
subtenant key on its own only. Keys and header values are write-only.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from connections import selectors, services
from connections.models import NAME_PATTERN, Connection, Route
from llmwrapper.api import StrictSerializer, listing
from llmwrapper.tenancy import tool_scope
from providers.core.registry import DEFAULT_PROVIDER_NAMES
from tenants.models import Subtenant
from tools.api import SUBTENANT_PARAM
from tools.netguard import redact_url

ROUTE_NAME = r"^[A-Za-z0-9_.:-]{1,64}$"


class ConnectionInSerializer(StrictSerializer):
    name = serializers.RegexField(NAME_PATTERN, help_text="Letters, digits, _ and -.")
    kind = serializers.ChoiceField(choices=Connection.Kind.choices)
    base_url = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    api_key = serializers.CharField(
        required=False, allow_null=True, max_length=4000, write_only=True
    )
    headers = serializers.DictField(
        child=serializers.CharField(max_length=4000), required=False, write_only=True
    )
    default_model = serializers.CharField(required=False, allow_blank=True, max_length=200)
    models = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=500
    )
    timeout = serializers.FloatField(required=False, allow_null=True, min_value=1, max_value=3600)
    api_version = serializers.CharField(required=False, allow_blank=True, max_length=40)
    is_active = serializers.BooleanField(required=False)
    subtenant = serializers.UUIDField(required=False, help_text="Admin keys: the owner.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "models" in attrs:
            attrs["model_list"] = attrs.pop("models")
        return attrs


class ConnectionOutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    kind = serializers.CharField()
    subtenant = serializers.UUIDField(allow_null=True)
    base_url = serializers.CharField(help_text="Without userinfo; query values as '***'.")
    api_key = serializers.CharField(allow_null=True, help_text="Masked: never returned.")
    headers = serializers.ListField(child=serializers.CharField(), help_text="Names only.")
    default_model = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())
    timeout = serializers.FloatField(allow_null=True)
    api_version = serializers.CharField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def connection_row(connection: Connection) -> dict[str, Any]:
    from llmwrapper.secrets import unseal

    secrets = unseal(connection.secrets_sealed, {})
    return {
        "id": str(connection.pk),
        "name": connection.name,
        "kind": connection.kind,
        "subtenant": str(connection.subtenant_id) if connection.subtenant_id else None,
        "base_url": redact_url(connection.base_url) if connection.base_url else "",
        "api_key": connection.api_key_hint or None,
        "headers": sorted(secrets.get("headers") or {}),
        "default_model": connection.default_model,
        "models": connection.model_list,
        "timeout": connection.timeout,
        "api_version": connection.api_version,
        "is_active": connection.is_active,
        "created_at": serializers.DateTimeField().to_representation(connection.created_at),
        "updated_at": serializers.DateTimeField().to_representation(connection.updated_at),
    }


class DeploymentSerializer(StrictSerializer):
    connection = serializers.RegexField(NAME_PATTERN)
    model = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    weight = serializers.FloatField(required=False, min_value=0, max_value=1_000_000, default=1)
    priority = serializers.IntegerField(required=False, min_value=0, max_value=100, default=0)


class RouteInSerializer(StrictSerializer):
    name = serializers.RegexField(ROUTE_NAME, help_text="Letters, digits, _ . : and -.")
    deployments = DeploymentSerializer(many=True, allow_empty=False, max_length=32)
    cooldown_seconds = serializers.FloatField(required=False, min_value=0, max_value=3600)
    is_active = serializers.BooleanField(required=False)
    subtenant = serializers.UUIDField(required=False, help_text="Admin keys: the owner.")


class RouteOutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    subtenant = serializers.UUIDField(allow_null=True)
    deployments = DeploymentSerializer(many=True)
    cooldown_seconds = serializers.FloatField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def route_row(route: Route) -> dict[str, Any]:
    return {
        "id": str(route.pk),
        "name": route.name,
        "subtenant": str(route.subtenant_id) if route.subtenant_id else None,
        "deployments": route.deployments,
        "cooldown_seconds": route.cooldown_seconds,
        "is_active": route.is_active,
        "created_at": serializers.DateTimeField().to_representation(route.created_at),
        "updated_at": serializers.DateTimeField().to_representation(route.updated_at),
    }


def _check_deployments(deployments: list[dict[str, Any]], owner: Subtenant | None) -> None:
    """Every deployment names a connection the route's owner can use."""
    visible = set(DEFAULT_PROVIDER_NAMES) | selectors.connection_names_visible(subtenant=owner)
    unknown = {
        str(i): [f"Unknown connection '{d['connection']}'."]
        for i, d in enumerate(deployments)
        if d["connection"] not in visible
    }
    if unknown:
        raise serializers.ValidationError({"deployments": unknown})


class ConnectionsView(APIView):
    @extend_schema(
        operation_id="connections_list",
        parameters=[SUBTENANT_PARAM],
        responses={200: listing("ConnectionList", ConnectionOutSerializer(many=True))},
        tags=["connections"],
    )
    def get(self, request: Request) -> Response:
        """The stored connections of the scope (global, or a subtenant's own)."""
        owner = tool_scope(request)
        rows = [connection_row(c) for c in selectors.connection_list(subtenant=owner)]
        return Response({"count": len(rows), "results": rows})

    @extend_schema(
        operation_id="connections_create",
        request=ConnectionInSerializer,
        responses={201: ConnectionOutSerializer},
        tags=["connections"],
    )
    def post(self, request: Request) -> Response:
        """Store a connection: a vendor endpoint with its own key."""
        serializer = ConnectionInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        owner = tool_scope(request, data.pop("subtenant", None))
        connection = services.connection_create(owner=owner, data=data)
        return Response(connection_row(connection), status=status.HTTP_201_CREATED)


def _connection(request: Request, name: str) -> Connection:
    return selectors.connection_owned(subtenant=tool_scope(request), name=name)


class ConnectionDetailView(APIView):
    @extend_schema(
        operation_id="connections_retrieve",
        parameters=[SUBTENANT_PARAM],
        responses={200: ConnectionOutSerializer},
        tags=["connections"],
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(connection_row(_connection(request, name)))

    @extend_schema(
        operation_id="connections_update",
        parameters=[SUBTENANT_PARAM],
        request=ConnectionInSerializer(partial=True),
        responses={200: ConnectionOutSerializer},
        tags=["connections"],
    )
    def put(self, request: Request, name: str) -> Response:
        """Change the fields given; `api_key` or `headers` given replace the stored ones."""
        connection = _connection(request, name)
        serializer = ConnectionInSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("subtenant", None)
        connection = services.connection_update(connection=connection, data=data)
        return Response(connection_row(connection))

    @extend_schema(
        operation_id="connections_destroy",
        parameters=[SUBTENANT_PARAM],
        responses={204: None},
        tags=["connections"],
    )
    def delete(self, request: Request, name: str) -> Response:
        services.connection_delete(connection=_connection(request, name))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoutesView(APIView):
    @extend_schema(
        operation_id="routes_list",
        parameters=[SUBTENANT_PARAM],
        responses={200: listing("RouteList", RouteOutSerializer(many=True))},
        tags=["connections"],
    )
    def get(self, request: Request) -> Response:
        """The routes of the scope (global, or a subtenant's own)."""
        owner = tool_scope(request)
        rows = [route_row(r) for r in selectors.route_list(subtenant=owner)]
        return Response({"count": len(rows), "results": rows})

    @extend_schema(
        operation_id="routes_create",
        request=RouteInSerializer,
        responses={201: RouteOutSerializer},
        tags=["connections"],
    )
    def post(self, request: Request) -> Response:
        """Store a route: a model name served by weighted, prioritized deployments."""
        serializer = RouteInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        owner = tool_scope(request, data.pop("subtenant", None))
        data["deployments"] = [dict(d) for d in data["deployments"]]
        _check_deployments(data["deployments"], owner)
        route = services.route_create(owner=owner, data=data)
        return Response(route_row(route), status=status.HTTP_201_CREATED)


def _route(request: Request, name: str) -> Route:
    return selectors.route_owned(subtenant=tool_scope(request), name=name)


class RouteDetailView(APIView):
    @extend_schema(
        operation_id="routes_retrieve",
        parameters=[SUBTENANT_PARAM],
        responses={200: RouteOutSerializer},
        tags=["connections"],
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(route_row(_route(request, name)))

    @extend_schema(
        operation_id="routes_update",
        parameters=[SUBTENANT_PARAM],
        request=RouteInSerializer(partial=True),
        responses={200: RouteOutSerializer},
        tags=["connections"],
    )
    def put(self, request: Request, name: str) -> Response:
        """Change the fields given."""
        route = _route(request, name)
        serializer = RouteInSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("subtenant", None)
        if "deployments" in data:
            data["deployments"] = [dict(d) for d in data["deployments"]]
            _check_deployments(data["deployments"], route.subtenant)
        return Response(route_row(services.route_update(route=route, data=data)))

    @extend_schema(
        operation_id="routes_destroy",
        parameters=[SUBTENANT_PARAM],
        responses={204: None},
        tags=["connections"],
    )
    def delete(self, request: Request, name: str) -> Response:
        services.route_delete(route=_route(request, name))
        return Response(status=status.HTTP_204_NO_CONTENT)
