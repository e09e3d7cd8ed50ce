"""Subtenant and API-key endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from llmwrapper.api import StrictModelSerializer, paginated, principal, validate_json_object
from llmwrapper.auth import IsAdminKey, IsApiKey
from llmwrapper.tenancy import named_subtenant
from tenants import selectors, services
from tenants.models import BUDGET_PERIODS, ApiKey, Subtenant, provider_choices


class ProviderValidator:
    """A provider configured from settings, or the name of a stored connection the
    subtenant sees: the global ones and its own. Another tenant's connection is
    unknown here, exactly like a name nobody uses.

    The subtenant is the serializer's context `subtenant`; None, or none given, sees
    the global connections only.
    """

    requires_context = True

    def __call__(self, value: str, field: serializers.Field) -> str:
        known = {name for name, _ in provider_choices()}
        if value and value not in known:
            from connections import selectors as connection_selectors

            subtenant = field.context.get("subtenant")
            if not connection_selectors.connection_name_exists(subtenant=subtenant, name=value):
                raise serializers.ValidationError(
                    f"Unknown provider; use one of {sorted(known)} or a connection's name."
                )
        return value


validate_provider = ProviderValidator()


class SubtenantSerializer(StrictModelSerializer):
    metadata = serializers.JSONField(required=False, validators=[validate_json_object])
    default_provider = serializers.CharField(
        required=False, allow_blank=True, max_length=32, validators=[validate_provider]
    )

    class Meta:
        model = Subtenant
        fields = [
            "id",
            "name",
            "description",
            "metadata",
            "default_provider",
            "default_model",
            "is_active",
            "rate_limit_rpm",
            "rate_limit_tpm",
            "token_budget",
            "budget_usd",
            "budget_period",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness is enforced by the database and answered with 409, not 400.
        extra_kwargs = {"name": {"validators": []}}


class SubtenantViewSet(viewsets.ViewSet):
    """Subtenants. Admin keys manage all; a subtenant key reads only its own."""

    serializer_class = SubtenantSerializer

    def get_permissions(self):  # type: ignore[no-untyped-def]
        if self.action in ("list", "retrieve"):
            return [IsApiKey()]
        return [IsAdminKey()]

    def list(self, request: Request) -> Response:
        qs = selectors.subtenant_list(key=principal(request).key)
        return paginated(request, qs, SubtenantSerializer)

    def create(self, request: Request) -> Response:
        serializer = SubtenantSerializer(data=request.data, context={"subtenant": None})
        serializer.is_valid(raise_exception=True)
        subtenant = services.subtenant_create(**serializer.validated_data)
        return Response(SubtenantSerializer(subtenant).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        subtenant = named_subtenant(request, pk)
        return Response(SubtenantSerializer(subtenant).data)

    def update(self, request: Request, pk: str) -> Response:
        subtenant = named_subtenant(request, pk)
        serializer = SubtenantSerializer(
            subtenant, data=request.data, partial=True, context={"subtenant": subtenant}
        )
        serializer.is_valid(raise_exception=True)
        subtenant = services.subtenant_update(subtenant=subtenant, **serializer.validated_data)
        return Response(SubtenantSerializer(subtenant).data)

    def destroy(self, request: Request, pk: str) -> Response:
        subtenant = named_subtenant(request, pk)
        services.subtenant_delete(subtenant=subtenant)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeySerializer(StrictModelSerializer):
    subtenant = serializers.UUIDField(
        source="subtenant_id", read_only=True, allow_null=True, help_text="null for admin keys."
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "subtenant",
            "rate_limit_rpm",
            "budget_usd",
            "budget_period",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. Shown only once.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyViewSet(viewsets.ViewSet):
    """API keys of one subtenant (`/subtenants/{id}/keys`) or admin keys (`/keys`). Admin only."""

    permission_classes = [IsAdminKey]
    serializer_class = ApiKeySerializer

    def _owner(self, request: Request, subtenant_pk: str | None) -> Subtenant | None:
        if subtenant_pk is None:
            return None
        return named_subtenant(request, subtenant_pk)

    def list(self, request: Request, subtenant_pk: str | None = None) -> Response:
        qs = selectors.api_key_list(subtenant=self._owner(request, subtenant_pk))
        return paginated(request, qs, ApiKeySerializer)

    @extend_schema(
        request=inline_serializer(
            "ApiKeyCreate",
            {
                "name": serializers.CharField(max_length=100),
                "rate_limit_rpm": serializers.IntegerField(required=False, min_value=0),
                "budget_usd": serializers.DecimalField(
                    max_digits=14, decimal_places=6, required=False, min_value=0
                ),
                "budget_period": serializers.ChoiceField(choices=BUDGET_PERIODS, required=False),
            },
        ),
        responses={201: ApiKeyCreatedSerializer},
    )
    def create(self, request: Request, subtenant_pk: str | None = None) -> Response:
        owner = self._owner(request, subtenant_pk)
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, raw = services.api_key_create(subtenant=owner, **serializer.validated_data)
        key.key = raw  # type: ignore[attr-defined]
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ApiKeySerializer})
    def destroy(self, request: Request, pk: str, subtenant_pk: str | None = None) -> Response:
        key = selectors.api_key_access(subtenant=self._owner(request, subtenant_pk), key_id=pk)
        services.api_key_revoke(key=key)
        return Response(ApiKeySerializer(key).data)
