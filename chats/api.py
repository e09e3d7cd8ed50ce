"""Chat and message-history endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from chats import selectors, services
from chats.serializers import ChatDetailSerializer, ChatSerializer
from llmwrapper.api import paginated, principal
from llmwrapper.tenancy import named_subtenant


class SubtenantChatViewSet(viewsets.ViewSet):
    """`/subtenants/{id}/chats`: create and list a subtenant's chats."""

    serializer_class = ChatSerializer

    def list(self, request: Request, subtenant_pk: str) -> Response:
        subtenant = named_subtenant(request, subtenant_pk)
        return paginated(request, selectors.chat_list(subtenant=subtenant), ChatSerializer)

    def create(self, request: Request, subtenant_pk: str) -> Response:
        subtenant = named_subtenant(request, subtenant_pk)
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
