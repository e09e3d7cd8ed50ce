"""The price table: `/api/v1/prices` and `/api/v1/prices/{id}` (admin keys only)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from llmwrapper.api import StrictModelSerializer, paginated
from llmwrapper.auth import IsAdminKey
from providers import selectors, services
from providers.models import Price


class PriceSerializer(StrictModelSerializer):
    connection = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=32,
        help_text="A provider or connection name matched against a call's provider "
        "(e.g. openai, anthropic, local, private); null or empty = any connection.",
    )

    class Meta:
        model = Price
        fields = [
            "id",
            "connection",
            "model",
            "input",
            "output",
            "cached_input",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness is enforced by the database and answered with 409, not 400.
        validators: list[Any] = []
        extra_kwargs = {
            "input": {"help_text": "USD per million input tokens."},
            "output": {"help_text": "USD per million output tokens."},
            "cached_input": {
                "help_text": "USD per million cached input tokens; null = the input price."
            },
        }

    def validate_connection(self, value: str | None) -> str:
        value = value or ""
        Price._meta.get_field("connection").run_validators(value)
        return value

    def to_representation(self, instance: Price) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["connection"] = data["connection"] or None
        return data


class PriceViewSet(viewsets.ViewSet):
    """Prices in US dollars per million tokens, by model (or `prefix*`) and connection."""

    permission_classes = [IsAdminKey]
    serializer_class = PriceSerializer

    def list(self, request: Request) -> Response:
        return paginated(request, selectors.price_list(), PriceSerializer)

    def create(self, request: Request) -> Response:
        serializer = PriceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        price = services.price_create(**serializer.validated_data)
        return Response(PriceSerializer(price).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(PriceSerializer(selectors.price_access(price_id=pk)).data)

    def update(self, request: Request, pk: str) -> Response:
        price = selectors.price_access(price_id=pk)
        serializer = PriceSerializer(price, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        price = services.price_update(price=price, **serializer.validated_data)
        return Response(PriceSerializer(price).data)

    def destroy(self, request: Request, pk: str) -> Response:
        services.price_delete(price=selectors.price_access(price_id=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
