"""What the request log reports about the request being handled, in a contextvar.

The middleware puts a `RequestRecord` in the context; code deeper down (the provider
loop, the authentication class through `request.api_key`) fills it in. A record is
mutable and shared by reference, so additions made in `sync_to_async` threads or in
tasks started during the request reach the middleware too.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(slots=True)
class LlmCallNote:
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    error_type: str = ""


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    llm_calls: list[LlmCallNote] = field(default_factory=list)


current_request: ContextVar[RequestRecord | None] = ContextVar(
    "llmwrapper_current_request", default=None
)


def current_request_id() -> str | None:
    record = current_request.get()
    return record.request_id if record is not None else None


def note_llm_call(note: LlmCallNote) -> None:
    """Add a provider call to the request being handled (no-op outside a request)."""
    record = current_request.get()
    if record is not None:
        record.llm_calls.append(note)
