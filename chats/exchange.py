"""Persisting OpenAI-compatible exchanges into a chat (`X-Chat-ID` header)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from chats import selectors, services
from chats.models import Chat, Message
from llmwrapper.errors import ResourceNotFoundError
from providers import wire
from providers.loop import TurnCompleted
from providers.types import ChatRequest
from tenants.models import Subtenant


def _chat(subtenant: Subtenant, chat_id: str) -> Chat:
    from django.core.exceptions import ValidationError

    try:
        return selectors.chat_list(subtenant=subtenant).get(pk=chat_id)
    except (Chat.DoesNotExist, ValidationError, ValueError) as exc:
        raise ResourceNotFoundError("Chat not found.", details={"id": chat_id}) from exc


class ChatExchangeRecorder:
    """Appends the request's newest user message and the answer to the chat."""

    async def check(self, *, subtenant: Subtenant, chat_id: str) -> None:
        await sync_to_async(_chat)(subtenant, chat_id)

    async def record(
        self,
        *,
        subtenant: Subtenant,
        chat_id: str,
        request: ChatRequest,
        text: str,
        turn: TurnCompleted,
    ) -> None:
        def write() -> None:
            chat = _chat(subtenant, chat_id)
            rows: list[dict[str, Any]] = []
            last = request.messages[-1] if request.messages else None
            if last is not None and last.role in ("user", "tool"):
                rows.append(
                    {
                        "role": last.role,
                        "content": last.content,
                        "tool_call_id": last.tool_call_id or "",
                        "name": last.name or "",
                    }
                )
            rows.append(
                {
                    "role": Message.Role.ASSISTANT,
                    "content": text,
                    "tool_calls": [wire.tool_call_to_api(c) for c in turn.pending_tool_calls],
                    "provider": turn.provider,
                    "model": turn.model,
                    "input_tokens": turn.usage.input_tokens,
                    "output_tokens": turn.usage.output_tokens,
                    "finish_reason": turn.finish_reason,
                    "metadata": {"source": "openai_compat"},
                }
            )
            services.messages_append(chat=chat, messages=rows)

        await sync_to_async(write)()
