"""Persisting OpenAI-compatible exchanges into a chat (`X-Chat-ID` header)."""

from __future__ import annotations

from typing import Any

from chats import selectors, services
from chats.models import Chat, Message
from llmwrapper import db
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


def _answer(
    text: str, turn: TurnCompleted | None, status: str, error: str, provider: str, model: str
) -> dict[str, Any]:
    """The assistant row: the finished turn, or the partial text of one that did not end."""
    row: dict[str, Any] = {
        "role": Message.Role.ASSISTANT,
        "content": text,
        "metadata": {"source": "openai_compat"},
    }
    if turn is None:
        return {**row, "provider": provider, "model": model, "status": status, "error": error}
    return {
        **row,
        "tool_calls": [wire.tool_call_to_api(c) for c in turn.pending_tool_calls],
        "provider": turn.provider,
        "model": turn.model,
        "input_tokens": turn.usage.input_tokens,
        "output_tokens": turn.usage.output_tokens,
        "finish_reason": turn.finish_reason,
    }


class ChatExchangeRecorder:
    """Appends the request's newest user message and the answer to the chat."""

    async def check(self, *, subtenant: Subtenant, chat_id: str) -> None:
        await db.run(_chat, subtenant, chat_id)

    async def record(
        self,
        *,
        subtenant: Subtenant,
        chat_id: str,
        request: ChatRequest,
        text: str,
        turn: TurnCompleted | None,
        status: str = Message.Status.COMPLETE,
        error: str = "",
        provider: str = "",
        model: str = "",
    ) -> None:
        """Store the exchange. Without `turn` (the client left, or the provider failed)
        the partial `text` is kept with `status` (`interrupted` or `error`, with the
        reason in `error`) and the `provider`/`model` that were asked."""

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
            rows.append(_answer(text, turn, status, error, provider, model))
            services.messages_append(chat=chat, messages=rows)

        await db.run(write)
