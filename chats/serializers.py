"""Serializers of chats and messages (also used to put messages into stream events)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chats import selectors
from chats.models import Chat, Message
from llmwrapper.api import StrictModelSerializer, StrictSerializer, validate_json_object
from providers.api import GenerationFieldsMixin
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


class MessageSerializer(serializers.ModelSerializer):
    chat = serializers.UUIDField(source="chat_id", read_only=True)
    usage = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "chat",
            "sequence",
            "role",
            "content",
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
        if message.input_tokens is None and message.output_tokens is None:
            return None
        prompt, completion = message.input_tokens or 0, message.output_tokens or 0
        return {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
        }


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
        newest = list(
            selectors.message_list(chat=chat).order_by("-sequence")[:MAX_MESSAGES_IN_CHAT_DETAIL]
        )
        return MessageSerializer(reversed(newest), many=True).data


class ToolResultInputSerializer(StrictSerializer):
    tool_call_id = serializers.CharField(max_length=200)
    content = serializers.JSONField(help_text="The tool's output: text, or JSON (sent as text).")
    is_error = serializers.BooleanField(required=False, default=False)

    def validate_content(self, value: object) -> str:
        import json

        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class SendMessageSerializer(StrictSerializer, GenerationFieldsMixin):
    content = serializers.CharField(required=False, allow_blank=False, trim_whitespace=False)
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

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("content") and not attrs.get("tool_results"):
            raise serializers.ValidationError(
                {"content": ["Send 'content', 'tool_results', or both."]}
            )
        return attrs
