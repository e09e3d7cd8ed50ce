"""Chat and message-history endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from chats import selectors, services
from chats.models import Chat, Message
from llmwrapper.api import (
    StrictModelSerializer,
    StrictSerializer,
    paginated,
    principal,
    validate_json_object,
)
from tenants.api import _validate_provider
from tenants.selectors import subtenant_access

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
        required=False, allow_blank=True, max_length=32, validators=[_validate_provider]
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

    @extend_schema(exclude=True)
    def get_messages(self, chat: Chat) -> list[dict]:
        # The newest messages, in chronological order; older ones via /messages.
        newest = list(
            selectors.message_list(chat=chat).order_by("-sequence")[:MAX_MESSAGES_IN_CHAT_DETAIL]
        )
        return MessageSerializer(reversed(newest), many=True).data


class SubtenantChatViewSet(viewsets.ViewSet):
    """`/subtenants/{id}/chats`: create and list a subtenant's chats."""

    serializer_class = ChatSerializer

    def list(self, request: Request, subtenant_pk: str) -> Response:
        subtenant = subtenant_access(key=principal(request).key, subtenant_id=subtenant_pk)
        return paginated(request, selectors.chat_list(subtenant=subtenant), ChatSerializer)

    def create(self, request: Request, subtenant_pk: str) -> Response:
        subtenant = subtenant_access(key=principal(request).key, subtenant_id=subtenant_pk)
        serializer = ChatSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        chat = services.chat_create(subtenant=subtenant, **serializer.validated_data)
        return Response(ChatSerializer(chat).data, status=status.HTTP_201_CREATED)


class ChatViewSet(viewsets.ViewSet):
    """`/chats/{id}`: read (with messages), update and delete one chat."""

    serializer_class = ChatDetailSerializer

    def retrieve(self, request: Request, pk: str) -> Response:
        chat = selectors.chat_access(key=principal(request).key, chat_id=pk)
        return Response(ChatDetailSerializer(chat).data)

    @extend_schema(request=ChatSerializer, responses=ChatSerializer)
    def update(self, request: Request, pk: str) -> Response:
        chat = selectors.chat_access(key=principal(request).key, chat_id=pk)
        serializer = ChatSerializer(chat, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        chat = services.chat_update(chat=chat, **serializer.validated_data)
        return Response(ChatSerializer(chat).data)

    def destroy(self, request: Request, pk: str) -> Response:
        chat = selectors.chat_access(key=principal(request).key, chat_id=pk)
        services.chat_delete(chat=chat)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChatMessageViewSet(viewsets.ViewSet):
    """`/chats/{id}/messages`: the chat's messages in chronological order, paginated."""

    serializer_class = MessageSerializer

    def list(self, request: Request, chat_pk: str) -> Response:
        chat = selectors.chat_access(key=principal(request).key, chat_id=chat_pk)
        return paginated(request, selectors.message_list(chat=chat), MessageSerializer)
