"""The call records of one turn: one `LlmCall` per model call, handed to the writer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from asgiref.sync import sync_to_async

from providers import gateway
from providers import records as call_records
from providers.core.errors import ProviderError
from providers.core.loop import RoundCompleted
from providers.models import LlmCall
from tenants.models import ApiKey, Subtenant


class TurnRecords:
    def __init__(
        self,
        *,
        subtenant: Subtenant,
        api_key: ApiKey | None,
        source: str,
        chat_id: uuid.UUID | None = None,
    ) -> None:
        self._who = {
            "subtenant": subtenant,
            "api_key": api_key,
            "source": source,
            "chat_id": chat_id,
        }
        self._pending: list[LlmCall] = []

    def round(self, round_: RoundCompleted) -> None:
        self._add(
            provider=round_.provider,
            model=round_.model,
            status=LlmCall.Status.OK,
            **round_.usage.record_fields(),
            latency_ms=round_.latency_ms,
            first_token_ms=round_.first_token_ms,
        )

    def failure(
        self, target: gateway.Target, *, status: str, error: ProviderError | None, latency_ms: int
    ) -> None:
        """The unfinished call: its time (and, for an error, the upstream status)
        belongs in usage reports too, under the model it asked for (the provider's
        default model when the turn named none)."""
        provider = error.provider if error else target.provider
        model = target.model if provider == target.provider else ""
        self._add(
            provider=provider,
            model=model or _default_model(provider),
            status=status,
            error_type=error.type if error else "",
            upstream_status=error.upstream_status if error else None,
            latency_ms=latency_ms,
        )

    def _add(self, **fields: Any) -> None:
        self._pending.append(LlmCall(**self._who, **fields))

    async def flush(self) -> None:
        """Hand the records to the background writer (or write them now, shielded so a
        client disconnect cannot lose them); their tokens count against the limits."""
        records, self._pending = self._pending, []
        if not records:
            return
        if call_records.in_background():
            call_records.writer().submit(records)
        else:
            await asyncio.shield(sync_to_async(call_records.store)(records))


def _default_model(provider: str) -> str:
    try:
        return gateway.registry().config(provider).default_model
    except ProviderError:  # a provider the registry does not know
        return ""
