"""`/subtenants/{id}/memories`: key-value memories addressed by key."""

from __future__ import annotations

from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from llmwrapper.api import StrictModelSerializer, paginated
from llmwrapper.tenancy import named_subtenant
from memories import selectors, services
from memories.models import Memory


class MemorySerializer(StrictModelSerializer):
    subtenant = serializers.UUIDField(source="subtenant_id", read_only=True)
    value = serializers.JSONField(help_text="Any JSON value except null.")

    class Meta:
        model = Memory
        fields = ["id", "subtenant", "key", "value", "description", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness is decided by the database and answered with 409.
        validators: list = []

    def validate_value(self, value: object) -> object:
        if value is None:
            raise serializers.ValidationError("May not be null.")
        return value


class MemoryUpdateSerializer(MemorySerializer):
    class Meta(MemorySerializer.Meta):
        read_only_fields = ["id", "key", "created_at", "updated_at"]


class MemoryViewSet(viewsets.ViewSet):
    serializer_class = MemorySerializer
    lookup_field = "key"

    def list(self, request: Request, subtenant_pk: str) -> Response:
        subtenant = named_subtenant(request, subtenant_pk)
        return paginated(request, selectors.memory_list(subtenant=subtenant), MemorySerializer)

    def create(self, request: Request, subtenant_pk: str) -> Response:
        subtenant = named_subtenant(request, subtenant_pk)
        serializer = MemorySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        memory = services.memory_create(subtenant=subtenant, **serializer.validated_data)
        return Response(MemorySerializer(memory).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, subtenant_pk: str, key: str) -> Response:
        subtenant = named_subtenant(request, subtenant_pk)
        return Response(MemorySerializer(selectors.memory_get(subtenant=subtenant, key=key)).data)

    def update(self, request: Request, subtenant_pk: str, key: str) -> Response:
        subtenant = named_subtenant(request, subtenant_pk)
        serializer = MemoryUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        memory = services.memory_update(subtenant=subtenant, key=key, **serializer.validated_data)
        return Response(MemorySerializer(memory).data)

    def destroy(self, request: Request, subtenant_pk: str, key: str) -> Response:
        subtenant = named_subtenant(request, subtenant_pk)
        services.memory_delete(subtenant=subtenant, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)
