"""Writes of chats. Sending messages lives in the conversation service."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from chats.models import Chat
from tenants.models import Subtenant


def chat_create(*, subtenant: Subtenant, **fields: Any) -> Chat:
    return Chat.objects.create(subtenant=subtenant, **fields)


def chat_update(*, chat: Chat, **fields: Any) -> Chat:
    for field, value in fields.items():
        setattr(chat, field, value)
    chat.save()
    return chat


def chat_delete(*, chat: Chat) -> None:
    with transaction.atomic():
        chat.delete()
