"""Spans and metrics around each model call and each server-side tool call.

Span attributes follow OpenTelemetry's GenAI semantic conventions (`gen_ai.*`). The
tool loop's rounds run inside async generators, so a model call's span is never left
"current" across a `yield` (the consumer's own work would land inside it, and a
generator closed from elsewhere could not restore the context): it is made current
only while the next event is awaited, which is when the SDK sends its HTTP requests.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmwrapper.observability import metrics, tracing
from llmwrapper.observability.context import LlmCallNote, note_llm_call


def _provider_kind(provider: Any) -> str:
    """gen_ai.provider.name: the vendor behind a provider (openai, anthropic, ollama,
    openai_compatible), where `llmwrapper.provider` is its configured name."""
    return getattr(getattr(provider, "config", None), "kind", "") or provider.name


class ProviderCall:
    """One model call of the tool loop (retries and fallbacks included).

    `provider` is the `providers.core.base.Provider` called: it describes the provider and
    model tried first. The call's attempt events (`providers.core.types.AttemptStarted`,
    `AttemptFailed`) say who answered and what failed on the way.
    """

    def __init__(self, provider: Any, request: Any) -> None:
        self.provider = provider.name
        self.model = provider.model_for(request)
        self.started = time.perf_counter()
        self.span = tracing.tracer().start_span(
            f"chat {self.model}",
            kind=SpanKind.CLIENT,
            attributes=_request_attributes(provider, request, self.model),
        )
        self.attempts = 0
        self.errors: list[BaseException] = []
        # The attempt under way (the provider called itself, until the stream reports
        # attempts), and the one whose output the caller got.
        self.attempt: Any = _Attempt(self.provider, self.model, "")
        self.answer: Any = None
        self.completed = False

    def events(self, stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The stream, with the span current while each event is awaited."""
        if not self.span.is_recording():
            return stream
        return _WithSpan(stream, self.span)

    def attempt_started(self, attempt: Any) -> None:
        self.attempts += 1
        self.attempt = attempt

    def attempt_failed(self, error: BaseException) -> None:
        self.errors.append(error)

    def output_started(self) -> None:
        """The caller got output: the attempt under way is the one that answers."""
        if self.answer is None:
            self.answer = self.attempt

    def complete(self, usage: Any, *, finish_reason: str, first_token_ms: int | None) -> None:
        """The stream ended normally; `usage` is its `providers.core.types.Usage`."""
        self.completed = True
        elapsed = time.perf_counter() - self.started
        answer = self.answer or self.attempt
        provider, model = answer.provider, answer.model
        self._count_errors(self.errors)
        label = metrics.model_label(model, admit=True)
        metrics.PROVIDER_CALLS.labels(provider, label, "ok").inc()
        metrics.PROVIDER_DURATION.labels(provider, label).observe(elapsed)
        if first_token_ms is not None:
            metrics.PROVIDER_FIRST_TOKEN.labels(provider, label).observe(first_token_ms / 1000)
        if usage.input_tokens:
            metrics.PROVIDER_TOKENS.labels(provider, label, "input").inc(usage.input_tokens)
        if usage.output_tokens:
            metrics.PROVIDER_TOKENS.labels(provider, label, "output").inc(usage.output_tokens)
        note_llm_call(LlmCallNote(provider, model, **usage.record_fields()))
        span = self.span
        if span.is_recording():
            if provider != self.provider:  # a fallback answered
                vendor = answer.vendor or provider
                span.set_attribute("gen_ai.provider.name", vendor)
                span.set_attribute("gen_ai.system", vendor)
                span.set_attribute("llmwrapper.provider", provider)
                span.update_name(f"chat {model}")
            span.set_attributes(
                {
                    "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": usage.input_tokens,
                    "gen_ai.usage.output_tokens": usage.output_tokens,
                    "gen_ai.response.finish_reasons": [finish_reason],
                    "llmwrapper.attempts": self.attempts or 1,
                }
            )
        span.end()

    def fail(self, exc: BaseException) -> None:
        """The call raised, or its consumer stopped reading (client gone)."""
        elapsed = time.perf_counter() - self.started
        answered = self.answer.provider if self.answer else None
        provider = answered or getattr(exc, "provider", None) or self.provider
        model = self.answer.model if self.answer else self.model
        cancelled = not isinstance(exc, Exception)  # GeneratorExit, CancelledError
        error_type = (
            "cancelled" if cancelled else (getattr(exc, "type", None) or type(exc).__name__)
        )
        errors = list(self.errors)
        if not cancelled and exc not in errors:
            errors.append(exc)  # the error that ended the call
        self._count_errors(errors)
        label = metrics.model_label(model)
        metrics.PROVIDER_CALLS.labels(provider, label, "cancelled" if cancelled else "error").inc()
        metrics.PROVIDER_DURATION.labels(provider, label).observe(elapsed)
        note_llm_call(LlmCallNote(provider, model, error_type=error_type))
        span = self.span
        if span.is_recording():
            span.set_attribute("error.type", error_type)
            span.set_attribute("llmwrapper.attempts", self.attempts or 1)
            if not cancelled:
                span.set_status(Status(StatusCode.ERROR, getattr(exc, "message", None) or ""))
        span.end()

    def _count_errors(self, errors: list[BaseException]) -> None:
        for error in errors:
            provider = getattr(error, "provider", None) or self.provider
            error_type = getattr(error, "type", None) or type(error).__name__
            metrics.PROVIDER_ERRORS.labels(provider, error_type).inc()
            if self.span.is_recording():
                self.span.add_event(
                    "gen_ai.attempt.failed",
                    {
                        "llmwrapper.provider": provider,
                        "error.type": error_type,
                        "http.response.status_code": getattr(error, "upstream_status", None) or 0,
                    },
                )


@contextmanager
def observe_provider_call(provider: Any, request: Any) -> Iterator[ProviderCall]:
    """Span, metrics and request-log figures for one model call of `provider`.

    The body reports the call's attempt events to `call` as they come, and calls
    `call.complete(usage, ...)` once the stream has ended; leaving the block with an
    exception (including the consumer closing the generator) records a failure.
    """
    call = ProviderCall(provider, request)
    try:
        yield call
    except BaseException as exc:
        if not call.completed:
            call.fail(exc)
        raise


@dataclass(frozen=True, slots=True)
class _Attempt:
    """An attempt, as `providers.core.types.AttemptStarted` describes one."""

    provider: str
    model: str
    vendor: str


class _WithSpan:
    def __init__(self, stream: AsyncIterator[Any], span: trace.Span) -> None:
        self._stream = stream
        self._context = trace.set_span_in_context(span)

    def __aiter__(self) -> _WithSpan:
        return self

    async def __anext__(self) -> Any:
        token = otel_context.attach(self._context)
        try:
            return await self._stream.__anext__()
        finally:
            otel_context.detach(token)


def _request_attributes(provider: Any, request: Any, model: str) -> dict[str, Any]:
    system = _provider_kind(provider)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": system,
        "gen_ai.system": system,  # the attribute's name before semantic conventions 1.37
        "gen_ai.request.model": model,
        "llmwrapper.provider": provider.name,
    }
    params = getattr(request, "params", None)
    for name, value in (
        ("gen_ai.request.temperature", getattr(params, "temperature", None)),
        ("gen_ai.request.top_p", getattr(params, "top_p", None)),
        ("gen_ai.request.max_tokens", getattr(params, "max_tokens", None)),
    ):
        if value is not None:
            attributes[name] = value
    return attributes


class ToolCallObservation:
    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self.error_type = ""

    def failed(self, error_type: str) -> None:
        """The tool answered with an error result (the model reads it; nothing raised)."""
        self.error_type = error_type or "tool_error"


@contextmanager
def observe_tool_call(*, name: str, call_id: str, kind: str) -> Iterator[ToolCallObservation]:
    """Span and metrics for one server-side tool call; `kind` is builtin, function or mcp."""
    started = time.perf_counter()
    with tracing.tracer().start_as_current_span(
        f"execute_tool {name}",
        kind=SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "extension" if kind == "mcp" else "function",
            "llmwrapper.tool.kind": kind,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        observation = ToolCallObservation(span)
        status = "ok"
        try:
            yield observation
        except BaseException as exc:
            # A timeout cancels the call; anything else is a bug surfacing as an error.
            status = "error" if isinstance(exc, Exception) else "cancelled"
            observation.error_type = type(exc).__name__ if status == "error" else "cancelled"
            raise
        finally:
            if status == "ok" and observation.error_type:
                status = "error"
            tool = name if kind == "builtin" else metrics.tool_label(name, admit=True)
            metrics.TOOL_CALLS.labels(kind, tool, status).inc()
            metrics.TOOL_DURATION.labels(kind).observe(time.perf_counter() - started)
            if observation.error_type and span.is_recording():
                span.set_attribute("error.type", observation.error_type)
                if status == "error":
                    span.set_status(Status(StatusCode.ERROR))
