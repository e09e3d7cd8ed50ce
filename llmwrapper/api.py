"""Shared pieces of every API view: the caller, strict serializers."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from llmwrapper.auth import Principal


class StrictSerializerMixin:
    """Reject fields the resource does not have, instead of silently ignoring them.

    Read-only fields (ids, timestamps) are accepted and ignored, so a client can PUT
    back what it got from a GET.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))  # type: ignore[attr-defined]
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictModelSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    pass


class StrictSerializer(StrictSerializerMixin, serializers.Serializer):
    pass


_KEPT: dict[type[serializers.Serializer], serializers.Serializer] = {}


def validated(serializer_class: type[serializers.Serializer], data: Any) -> Any:
    """What `serializer_class(data=data).is_valid(raise_exception=True)` leaves in
    `validated_data`, raising the same ValidationError, from one instance kept per
    class: DRF builds a serializer's fields anew (a deep copy) for every instance,
    most of what validating a request body costs. For serializers that need no context
    and keep no state between calls (the request bodies of the LLM surfaces)."""
    kept = _KEPT.get(serializer_class)
    if kept is None:
        kept = _KEPT[serializer_class] = serializer_class()
    return kept.run_validation(data)


def principal(request: Request) -> Principal:
    user = request.user
    assert isinstance(user, Principal)  # guaranteed by IsApiKey
    return user


def validate_json_object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be a JSON object.")
    return value


def query_param(request: Request, name: str, field: serializers.Field) -> Any:
    """A query parameter validated by `field` (None when absent or blank); a value the
    field refuses is a 400 naming the parameter."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return field.run_validation(raw)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({name: exc.detail}) from exc


def listing(name: str, items: Any) -> Any:
    """The schema of an unpaginated list answer, `{count, results}`; `items` is a
    serializer instance with many=True."""
    from drf_spectacular.utils import inline_serializer

    return inline_serializer(name, {"count": serializers.IntegerField(), "results": items})


def paginated(request: Request, queryset: Any, serializer_class: type, **context: Any) -> Any:
    """One page of `queryset`, serialized, in the `{count, next, previous, results}` shape."""
    from llmwrapper.pagination import Pagination

    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request)
    data = serializer_class(page, many=True, context=context).data
    return paginator.get_paginated_response(data)
