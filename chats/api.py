"""Chat and message-history endpoints."""

from __future__ import annotations

import mimetypes

from asgiref.sync import sync_to_async
from django.http import HttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from chats import attachments, selectors, services
from chats.models import Attachment
from chats.serializers import ChatDetailSerializer, ChatSerializer
from llmwrapper import db
from llmwrapper.api import paginated, principal
from llmwrapper.async_views import AsyncAPIView
from llmwrapper.errors import ResourceNotFoundError
from llmwrapper.tenancy import named_subtenant
from providers.core.content import DOCUMENT_TYPES, IMAGE_TYPES


class SubtenantChatViewSet(viewsets.ViewSet):
    """`/subtenants/{id}/chats`: create and list a subtenant's chats."""

    serializer_class = ChatSerializer

    def list(self, request: Request, subtenant_pk: str) -> Response:
        subtenant = named_subtenant(request, subtenant_pk)
        return paginated(request, selectors.chat_list(subtenant=subtenant), ChatSerializer)

    def create(self, request: Request, subtenant_pk: str) -> Response:
        subtenant = named_subtenant(request, subtenant_pk)
        serializer = ChatSerializer(data=request.data, context={"subtenant": subtenant})
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
        serializer = ChatSerializer(
            chat, data=request.data, partial=True, context={"subtenant": chat.subtenant}
        )
        serializer.is_valid(raise_exception=True)
        chat = services.chat_update(chat=chat, **serializer.validated_data)
        return Response(ChatSerializer(chat).data)

    def destroy(self, request: Request, pk: str) -> Response:
        chat = selectors.chat_access(key=principal(request).key, chat_id=pk)
        services.chat_delete(chat=chat)
        return Response(status=status.HTTP_204_NO_CONTENT)


ATTACHMENT_TYPES = (*IMAGE_TYPES, *DOCUMENT_TYPES)


class AttachmentView(AsyncAPIView):
    """`/chats/{id}/attachments/{attachment_id}`: the bytes of an image or document sent
    in the chat, as a message's `parts` link them."""

    keeps_connection = True

    def perform_content_negotiation(self, request: Request, force: bool = False):  # type: ignore[no-untyped-def]
        # Bytes whatever the client accepts (an <img> asks for image/*); errors are JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        responses={(200, media_type): OpenApiTypes.BINARY for media_type in ATTACHMENT_TYPES},
        summary="Read an attachment",
        description="The bytes with their media type: images inline, PDFs as a download "
        "(`Content-Disposition` with the filename), sandboxed (`Content-Security-Policy: "
        "sandbox`, `X-Content-Type-Options: nosniff`).",
        tags=["chats"],
    )
    async def get(self, request: Request, chat_pk: str, attachment_id: str) -> HttpResponse:
        attachment = await db.run(
            selectors.attachment_access,
            key=principal(request).key,
            chat_id=chat_pk,
            attachment_id=attachment_id,
        )
        try:
            data = await sync_to_async(attachments.read, thread_sensitive=False)(attachment)
        except FileNotFoundError as exc:
            raise ResourceNotFoundError(
                "Attachment not found.", details={"id": str(attachment_id)}
            ) from exc
        return attachment_response(attachment, data)


def attachment_response(attachment: Attachment, data: bytes) -> HttpResponse:
    """An attachment's bytes, served so that a browser cannot run them as a page."""
    response = HttpResponse(data, content_type=attachment.media_type)
    image = attachment.media_type.startswith("image/")
    filename = attachment.filename or (
        f"{attachment.id}{mimetypes.guess_extension(attachment.media_type) or ''}"
    )
    response["Content-Disposition"] = content_disposition_header(not image, filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    response["Cache-Control"] = "private, max-age=86400"
    response["ETag"] = f'"{attachment.sha256}"'
    return response
