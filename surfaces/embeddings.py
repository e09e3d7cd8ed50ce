"""Embeddings: `POST /v1/embeddings` (OpenAI's format and errors) and
`POST /api/v1/llm/embed` (the product's). Both parse into `pipeline.embed.EmbedSpec`
and format what `pipeline.embed.embed` returns.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from llmwrapper.api import StrictSerializer, principal, validated
from llmwrapper.async_views import AsyncAPIView
from llmwrapper.tenancy import abilled_subtenant
from pipeline.embed import EmbedSpec, Inputs, embed
from providers.core import wire
from surfaces.openai_chat import _OpenAIView, _subtenant

MAX_INPUTS = 16_384  # per request; split into the vendor's batches (OpenAI takes 2048)
MAX_DIMENSIONS = 16_384
_MAX_TOKEN_ID = 2**32 - 1

_TOKENS = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
            _TOKENS,
            {"type": "array", "items": _TOKENS, "minItems": 1},
        ],
        "description": "A text, a list of texts, or token ids (one array, or a list of "
        f"arrays; OpenAI and private providers only). At most {MAX_INPUTS} inputs.",
    }
)
class EmbeddingInputField(serializers.Field):
    """`input` as OpenAI takes it, as a tuple of texts or of token-id tuples."""

    default_error_messages = {
        "invalid": "Must be a string, a list of strings, or token ids (a list of "
        "integers, or a list of such lists).",
        "empty": "Must not be empty.",
        "blank": "Texts must not be empty strings.",
        "too_many": f"At most {MAX_INPUTS} inputs per request.",
    }

    def to_internal_value(self, data: Any) -> Inputs:
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, list):
            self.fail("invalid")
        if not data:
            self.fail("empty")
        if all(_is_token(t) for t in data):
            return (tuple(data),)  # one token-id array
        if len(data) > MAX_INPUTS:
            self.fail("too_many")
        if all(isinstance(item, str) for item in data):
            if not all(data):
                self.fail("blank")
            return tuple(data)
        if all(isinstance(item, list) and item and all(map(_is_token, item)) for item in data):
            return tuple(tuple(item) for item in data)
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


def _is_token(value: object) -> bool:
    return type(value) is int and 0 <= value <= _MAX_TOKEN_ID


class _EmbeddingFields(serializers.Serializer):
    input = EmbeddingInputField()
    dimensions = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_DIMENSIONS,
        help_text="Shorter vectors, for models that support it (passed to the vendor).",
    )
    encoding_format = serializers.ChoiceField(
        choices=["float", "base64"],
        required=False,
        default="float",
        help_text="`base64`: each vector as little-endian float32 bytes, base64-encoded.",
    )


class OpenAIEmbeddingsSerializer(_EmbeddingFields):
    model = serializers.CharField(
        max_length=240, help_text="`provider/model`, an alias, or a bare model name."
    )
    user = serializers.CharField(required=False, max_length=256)  # accepted and ignored
    # Other OpenAI fields are accepted and ignored, as on /v1/chat/completions.


class EmbedSerializer(StrictSerializer, _EmbeddingFields):
    provider = serializers.CharField(required=False, allow_blank=True, max_length=32)
    model = serializers.CharField(
        max_length=200, help_text="The embedding model, or `provider/model`, or an alias."
    )
    subtenant = serializers.UUIDField(
        required=False, help_text="Which subtenant the call is for: required with an admin key."
    )


def encode(vector: Sequence[float], encoding_format: str) -> list[float] | str:
    """A vector as floats, or as OpenAI's base64 of little-endian float32."""
    if encoding_format == "base64":
        packed = array("f", vector)  # a copy also of an array: byteswap must not touch it
        if sys.byteorder == "big":
            packed.byteswap()
        return base64.b64encode(packed.tobytes()).decode("ascii")
    if isinstance(vector, array):
        return vector.tolist()
    return vector if isinstance(vector, list) else list(vector)


class EmbeddingsView(_OpenAIView):
    renderer_classes = [JSONRenderer]  # no stream here

    @extend_schema(
        request=OpenAIEmbeddingsSerializer,
        responses={
            200: inline_serializer(
                "OpenAIEmbeddingList",
                {
                    "object": serializers.CharField(help_text="`list`"),
                    "data": serializers.ListField(
                        child=serializers.DictField(),
                        help_text='`{"object": "embedding", "index", "embedding"}` per input, '
                        "in order; `embedding` is floats or a base64 string.",
                    ),
                    "model": serializers.CharField(help_text="`provider/model`"),
                    "usage": serializers.DictField(child=serializers.IntegerField()),
                },
            )
        },
        summary="OpenAI-compatible embeddings",
        tags=["openai-compatible"],
    )
    async def post(self, request: Request) -> Response:
        fields = validated(OpenAIEmbeddingsSerializer, request.data)
        embedded = await embed(
            EmbedSpec(
                subtenant=_subtenant(request),
                api_key=principal(request).key,
                model=fields["model"],
                inputs=fields["input"],
                dimensions=fields.get("dimensions"),
            )
        )
        fmt = fields["encoding_format"]
        tokens = embedded.usage.input_tokens
        return Response(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": index, "embedding": encode(vector, fmt)}
                    for index, vector in enumerate(embedded.vectors)
                ],
                "model": f"{embedded.provider}/{embedded.model}",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


class EmbedView(AsyncAPIView):
    @extend_schema(
        request=EmbedSerializer,
        responses={
            200: inline_serializer(
                "Embeddings",
                {
                    "provider": serializers.CharField(),
                    "model": serializers.CharField(),
                    "embeddings": serializers.ListField(
                        child=serializers.JSONField(),
                        help_text="One per input, in order: floats, or a base64 string.",
                    ),
                    "usage": serializers.DictField(child=serializers.IntegerField()),
                },
            )
        },
        summary="Embeddings",
        tags=["llm"],
    )
    async def post(self, request: Request) -> Response:
        data = validated(EmbedSerializer, request.data)
        caller = principal(request)
        subtenant = await abilled_subtenant(request, data.get("subtenant"))
        embedded = await embed(
            EmbedSpec(
                subtenant=subtenant,
                api_key=caller.key,
                provider=data.get("provider") or None,
                model=data["model"],
                inputs=data["input"],
                dimensions=data.get("dimensions"),
            )
        )
        fmt = data["encoding_format"]
        return Response(
            {
                "provider": embedded.provider,
                "model": embedded.model,
                "embeddings": [encode(vector, fmt) for vector in embedded.vectors],
                "usage": wire.usage_to_api(embedded.usage),
            }
        )
