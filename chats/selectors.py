"""Reads of chats and messages, always scoped by subtenant."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from chats.models import Attachment, Chat, Message
from llmwrapper.errors import ResourceNotFoundError
from tenants.models import ApiKey, Subtenant


def chat_list(*, subtenant: Subtenant) -> QuerySet[Chat]:
    return Chat.objects.filter(subtenant=subtenant)


def chat_access(*, key: ApiKey, chat_id: UUID | str) -> Chat:
    """The only way from a chat id in a request to a Chat: another tenant's chat is a 404."""
    qs = Chat.objects.select_related("subtenant")
    if not key.is_admin:
        qs = qs.filter(subtenant_id=key.subtenant_id)
    chat = qs.filter(pk=chat_id).first()
    if chat is None:
        raise ResourceNotFoundError("Chat not found.", details={"id": str(chat_id)})
    return chat


def message_list(*, chat: Chat) -> QuerySet[Message]:
    return Message.objects.filter(chat=chat).order_by("sequence")


def attachment_access(*, key: ApiKey, chat_id: UUID | str, attachment_id: UUID | str) -> Attachment:
    """An attachment of a chat the key reaches; anything else is a 404."""
    chat = chat_access(key=key, chat_id=chat_id)
    attachment = Attachment.objects.filter(chat=chat, pk=attachment_id).first()
    if attachment is None:
        raise ResourceNotFoundError("Attachment not found.", details={"id": str(attachment_id)})
    return attachment
