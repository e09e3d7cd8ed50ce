"""Serializers of chats and messages (also used to put messages into stream events)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chats import selectors
from chats.attachments import parts_to_api
from chats.models import Chat, Message
from llmwrapper.api import StrictModelSerializer, StrictSerializer, validate_json_object
from providers import gateway
from providers.core.content import parse_content
from providers.request_fields import GenerationFieldsMixin
from tenants.api import validate_provider

MAX_MESSAGES_IN_CHAT_DETAIL = 200


class GenerationParamsSerializer(StrictSerializer):
    temperature = serializers.FloatField(required=False, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, min_value=0, max_value=1)
    max_tokens = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
    stop = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=8
    )
    presence_penalty = serializers.FloatField(required=False, min_value=-2, max_value=2)
    frequency_penalty = serializers.FloatField(required=False, min_value=-2, max_value=2)
    seed = serializers.IntegerField(required=False)


PART_SCHEMA = {
    "type": "object",
    "description": "A content part in OpenAI's format: `text`, `image_url` or `file`.",
    "additionalProperties": True,
}


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "array", "items": PART_SCHEMA}],
        "description": "Text, or content parts in OpenAI's format: text, image_url "
        "(an https:// URL or a data: URI) and file (a PDF as `file.file_data`, a data: URI).",
    }
)
class ContentField(serializers.JSONField):
    pass


@extend_schema_field(
    {
        "type": "array",
        "items": PART_SCHEMA,
        "nullable": True,
        "description": "The whole content, in order, when the message holds images or "
        "documents (null otherwise): stored ones by the URL of their attachment "
        "(`image_url.url`, `file.url`, and `attachment: {id, url, media_type, size, sha256}`).",
    }
)
class PartsField(serializers.JSONField):
    pass


class MessageSerializer(serializers.ModelSerializer):
    chat = serializers.UUIDField(source="chat_id", read_only=True)
    usage = serializers.SerializerMethodField()
    parts = PartsField(read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "chat",
            "sequence",
            "role",
            "content",
            "parts",
            "tool_calls",
            "tool_call_id",
            "name",
            "provider",
            "model",
            "usage",
            "finish_reason",
            "status",
            "error",
            "latency_ms",
            "metadata",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_usage(self, message: Message) -> dict | None:
        return _usage(message)

    def to_representation(self, instance: Message) -> dict[str, Any]:
        return message_to_api(instance)


def message_to_api(message: Message) -> dict[str, Any]:
    """A message as the API shows it: MessageSerializer's fields, built directly, as
    every chat event carries messages and a send serializes several."""
    zone = timezone.get_current_timezone()
    return {
        "id": str(message.id),
        "chat": str(message.chat_id),
        "sequence": message.sequence,
        "role": message.role,
        "content": message.content,
        "parts": parts_to_api(message.chat_id, message.parts) if message.parts else None,
        "tool_calls": message.tool_calls,
        "tool_call_id": message.tool_call_id,
        "name": message.name,
        "provider": message.provider,
        "model": message.model,
        "usage": _usage(message),
        "finish_reason": message.finish_reason,
        "status": message.status,
        "error": message.error,
        "latency_ms": message.latency_ms,
        "metadata": message.metadata,
        "created_at": _timestamp(message.created_at, zone),
        "updated_at": _timestamp(message.updated_at, zone),
    }


def _usage(message: Message) -> dict | None:
    if message.input_tokens is None and message.output_tokens is None:
        return None
    prompt, completion = message.input_tokens or 0, message.output_tokens or 0
    total = prompt + completion
    return {"input_tokens": prompt, "output_tokens": completion, "total_tokens": total}


def _timestamp(value: datetime | None, zone: tzinfo) -> str | None:
    """As DRF's DateTimeField writes it: ISO 8601 in `zone` (the current time zone),
    UTC as Z."""
    if value is None:
        return None
    if str(zone) != "UTC" or value.utcoffset():  # a UTC time shown in UTC is kept as is
        value = value.astimezone(zone)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ChatSerializer(StrictModelSerializer):
    subtenant = serializers.UUIDField(source="subtenant_id", read_only=True)
    provider = serializers.CharField(
        required=False, allow_blank=True, max_length=32, validators=[validate_provider]
    )
    params = GenerationParamsSerializer(required=False)
    metadata = serializers.JSONField(required=False, validators=[validate_json_object])
    message_count = serializers.IntegerField(source="last_sequence", read_only=True)

    class Meta:
        model = Chat
        fields = [
            "id",
            "subtenant",
            "title",
            "provider",
            "model",
            "system_prompt",
            "params",
            "metadata",
            "message_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class ChatDetailSerializer(ChatSerializer):
    messages = serializers.SerializerMethodField()

    class Meta(ChatSerializer.Meta):
        fields = [*ChatSerializer.Meta.fields, "messages"]

    @extend_schema_field(MessageSerializer(many=True))
    def get_messages(self, chat: Chat) -> list[dict]:
        # The newest messages, in chronological order; older ones via /messages.
        newest = selectors.message_list_newest(chat=chat, limit=MAX_MESSAGES_IN_CHAT_DETAIL)
        return MessageSerializer(newest, many=True).data


class ToolResultInputSerializer(StrictSerializer):
    tool_call_id = serializers.CharField(max_length=200)
    content = serializers.JSONField(help_text="The tool's output: text, or JSON (sent as text).")
    is_error = serializers.BooleanField(required=False, default=False)

    def validate_content(self, value: object) -> str:
        import json

        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class SendMessageSerializer(StrictSerializer, GenerationFieldsMixin):
    """A send; `content` comes out as its text, with its images and documents in
    `parts` (providers.core.content: a refused part is a 400, one too large a 413)."""

    content = ContentField(required=False)
    include_memories = serializers.BooleanField(required=False, default=False)
    memory_keys = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=500
    )
    tool_results = ToolResultInputSerializer(many=True, required=False, max_length=128)
    provider = serializers.CharField(required=False, allow_blank=True, max_length=32)
    model = serializers.CharField(required=False, allow_blank=True, max_length=200)
    fallbacks = serializers.ListField(
        child=serializers.CharField(max_length=240), required=False, max_length=5
    )

    def validate_content(self, value: object) -> object:
        if value == "":
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate(self, attrs: dict) -> dict:
        if "content" in attrs:
            attrs["content"], attrs["parts"] = parse_content(
                attrs["content"], where="content", role="user", limits=gateway.content_limits()
            )
        if not attrs.get("content") and not attrs.get("parts") and not attrs.get("tool_results"):
            raise serializers.ValidationError(
                {"content": ["Send 'content', 'tool_results', or both."]}
            )
        return attrs
