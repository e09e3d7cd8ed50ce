"""The OpenAPI schema's shared parts: error responses, pagination and tags.

Every operation documents the error statuses it can answer, each with the one error
shape of the API (`Error`; OpenAI's own shape, `OpenAIError`, under `/v1/`), so a
client generated from the schema knows every answer it can get.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from llmwrapper.async_views import AsyncAPIView
from llmwrapper.pagination import Pagination


class ErrorBodySerializer(serializers.Serializer):
    type = serializers.CharField(help_text="What went wrong, e.g. `validation_error`.")
    message = serializers.CharField(help_text="A sentence for humans.")
    details = serializers.JSONField(
        allow_null=True, help_text="Field errors (validation) or more about the error; or null."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


class OpenAIErrorBodySerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField(help_text="e.g. `invalid_request_error`, `api_error`.")
    param = serializers.CharField(allow_null=True)
    code = serializers.CharField(allow_null=True)


class OpenAIErrorSerializer(serializers.Serializer):
    error = OpenAIErrorBodySerializer()


ERROR_DESCRIPTIONS = {
    400: "Invalid request: a field, parameter or body is wrong (`details` says which).",
    401: "No key, a malformed header, or an unknown or revoked key.",
    403: "The key may not do this.",
    404: "Not found, or belonging to another tenant.",
    409: "Conflict, e.g. a duplicate name or key.",
    413: "Request body too large.",
    415: "The body is not `application/json`.",
    422: "The tool ran and failed (sandbox limits, errors).",
    429: "Rate limited, or the token budget is used up (see `Retry-After`).",
    502: "The provider or tool upstream failed.",
    503: "Temporarily unavailable (try again after `Retry-After`).",
    504: "The provider or tool upstream did not answer in time.",
}
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "description": "Seconds to wait before trying again.",
    }
}


class ApiSchema(AutoSchema):
    """drf-spectacular's AutoSchema, with the error responses and tags of this API."""

    def error_statuses(self) -> list[int]:
        codes = [400, 401, 403, 404, 429, 503]
        if self.method in ("POST", "PUT", "PATCH"):
            codes += [409, 413, 415]
        # Async views are the ones that wait on providers and tools; POST runs them.
        if isinstance(self.view, AsyncAPIView) and self.method == "POST":
            codes += [502, 504]
            if self.path.endswith("/execute"):
                codes.append(422)
        return sorted(codes)

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        error = OpenAIErrorSerializer if self.path.startswith("/v1/") else ErrorSerializer
        for code in self.error_statuses():
            if str(code) in responses:
                continue
            response = self._get_response_for_code(
                error, str(code), ["application/json"], direction
            )
            response["description"] = ERROR_DESCRIPTIONS[code]
            if code in (429, 503):
                response["headers"] = RETRY_AFTER
            responses[str(code)] = response
        return responses

    def _get_paginator(self) -> Pagination:
        # Asked only for list responses: every list of the API is paginated
        # (`llmwrapper.api.paginated`), in ViewSets and plain views alike.
        return Pagination()

    def get_tags(self) -> list[str]:
        # The resource a path names last: /subtenants/{id}/memories/{key} is "memories".
        literal = [part for part in self._tokenize_path() if not part.startswith("{")]
        return literal[-1:] or ["api"]
