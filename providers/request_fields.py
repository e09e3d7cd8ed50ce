"""Request fields shared by every API that takes messages and generation params: the
direct LLM API, `/v1/chat/completions` and chat sends."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from llmwrapper.api import StrictSerializer

ROLES = ["system", "user", "assistant", "tool"]


class ToolCallInputSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=64, required=False)
    arguments = serializers.JSONField(required=False)
    type = serializers.CharField(required=False)
    function = serializers.DictField(required=False)

    def validate(self, attrs: dict) -> dict:
        if "name" not in attrs and not (attrs.get("function") or {}).get("name"):
            raise serializers.ValidationError("A tool call needs a name (or function.name).")
        return attrs


CONTENT_PART_SCHEMA = {
    "type": "object",
    "description": "A content part, in OpenAI's Chat Completions format.",
    "oneOf": [
        {
            "type": "object",
            "title": "text",
            "properties": {"type": {"enum": ["text"]}, "text": {"type": "string"}},
            "required": ["type", "text"],
        },
        {
            "type": "object",
            "title": "image_url",
            "properties": {
                "type": {"enum": ["image_url"]},
                "image_url": {
                    "type": "object",
                    "properties": {
                        "url": {
                            "type": "string",
                            "description": "https:// URL, or data:<image type>;base64,...",
                        },
                        "detail": {"enum": ["auto", "low", "high"]},
                    },
                    "required": ["url"],
                },
            },
            "required": ["type", "image_url"],
        },
        {
            "type": "object",
            "title": "file",
            "properties": {
                "type": {"enum": ["file"]},
                "file": {
                    "type": "object",
                    "properties": {
                        "file_data": {
                            "type": "string",
                            "description": "data:application/pdf;base64,...",
                        },
                        "filename": {"type": "string"},
                    },
                    "required": ["file_data"],
                },
            },
            "required": ["type", "file"],
        },
    ],
}
CONTENT_SCHEMA = {
    "oneOf": [{"type": "string"}, {"type": "array", "items": CONTENT_PART_SCHEMA}],
    "nullable": True,
    "description": "Text, or content parts: text, images and PDFs (README: Images and documents).",
}


@extend_schema_field(CONTENT_SCHEMA)
class ContentField(serializers.JSONField):
    """A message's content: text or content parts (checked by providers.core.content)."""


class MessageInputSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = ContentField(required=False, allow_null=True)
    tool_calls = ToolCallInputSerializer(many=True, required=False)
    tool_call_id = serializers.CharField(required=False, max_length=200)
    name = serializers.CharField(required=False, max_length=128)

    def validate_content(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(p, dict) for p in value):
            return value
        raise serializers.ValidationError("Must be a string or a list of content parts.")

    def validate(self, attrs: dict) -> dict:
        if attrs["role"] == "tool" and not attrs.get("tool_call_id"):
            raise serializers.ValidationError({"tool_call_id": "Required for role 'tool'."})
        return attrs


class ToolInputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["function"], default="function")
    function = serializers.DictField()

    def validate_function(self, value: dict) -> dict:
        return validate_function_spec(value)


def validate_function_spec(value: Any) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise serializers.ValidationError("A function needs a 'name'.")
    params = value.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise serializers.ValidationError("'parameters' must be a JSON Schema object.")
    return value


class GenerationFieldsMixin(serializers.Serializer):
    """Generation params, OpenAI-style at the top level of the body."""

    temperature = serializers.FloatField(required=False, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, min_value=0, max_value=1)
    max_tokens = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
    stop = serializers.JSONField(required=False)
    response_format = serializers.DictField(required=False)
    presence_penalty = serializers.FloatField(required=False, min_value=-2, max_value=2)
    frequency_penalty = serializers.FloatField(required=False, min_value=-2, max_value=2)
    seed = serializers.IntegerField(required=False)
    tools = ToolInputSerializer(many=True, required=False)
    functions = serializers.ListField(child=serializers.JSONField(), required=False)
    tool_choice = serializers.JSONField(required=False)
    server_tools = serializers.JSONField(
        required=False,
        help_text="Server-side tools offered to the model: omitted or true = all, "
        "false = none, a list of names = only those.",
    )

    def validate_stop(self, value: Any) -> Any:
        if isinstance(value, str) or (
            isinstance(value, list) and len(value) <= 8 and all(isinstance(s, str) for s in value)
        ):
            return value
        raise serializers.ValidationError("Must be a string or a list of up to 8 strings.")

    def validate_functions(self, value: list) -> list:
        return [validate_function_spec(f) for f in value]

    def validate_server_tools(self, value: Any) -> Any:
        if isinstance(value, bool) or (
            isinstance(value, list) and all(isinstance(n, str) for n in value)
        ):
            return value
        raise serializers.ValidationError("Must be true, false or a list of tool names.")
