"""Tracing: spans for HTTP requests, model calls and tool calls, through the served app."""

import time

import httpx
import pytest
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from chats.models import Chat
from llmwrapper.observability import tracing

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    # Not the global provider: it cannot be replaced, and later tests run untraced.
    tracing.configure_tracing(processor=SimpleSpanProcessor(exporter), set_global=False)
    yield exporter
    tracing.shutdown_tracing()


class UntracedClient(httpx.Client):
    """The test's own requests, kept out of the traces: each request starts its own."""

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        with suppress_http_instrumentation():
            return super().send(request, **kwargs)


@pytest.fixture
def served_chat(make_tenant, llm_fakes, live_server_url):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, provider="openai")
    client = UntracedClient(
        base_url=live_server_url, headers={"Authorization": f"Bearer {raw}"}, timeout=10
    )
    with client:
        yield chat, client, llm_fakes


def finished(exporter, name: str, timeout: float = 5.0):
    """Spans called `name`, waiting for the server span, which ends after the response."""
    deadline = time.monotonic() + timeout
    while True:
        found = [s for s in exporter.get_finished_spans() if s.name == name]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_http_request_gets_a_server_span_named_after_its_route(spans, served_chat):
    chat, client, _ = served_chat
    response = client.get(f"/api/v1/chats/{chat.id}")
    assert response.status_code == 200

    [server] = finished(spans, "GET /api/v1/chats/{pk}")
    assert server.kind == SpanKind.SERVER
    assert server.attributes["http.route"] == "/api/v1/chats/{pk}"
    assert 200 in (
        server.attributes.get("http.response.status_code"),
        server.attributes.get("http.status_code"),
    )


def test_server_span_continues_the_callers_trace(spans, served_chat):
    chat, client, _ = served_chat
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert client.get(f"/api/v1/chats/{chat.id}", headers={"traceparent": caller}).is_success
    [server] = finished(spans, "GET /api/v1/chats/{pk}")
    assert server.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert server.parent.span_id == 0xB7AD6B7169203331


def test_provider_call_span_has_genai_attributes_and_the_sdks_http_call_inside(spans, served_chat):
    chat, client, fakes = served_chat
    fakes.openai.enqueue(text="Hi there", usage=(12, 3))
    response = client.post(f"/api/v1/chats/{chat.id}/messages", json={"content": "Hello"})
    assert response.status_code == 200, response.text

    [server] = finished(spans, "POST /api/v1/chats/{chat_pk}/messages")
    [call] = finished(spans, "chat gpt-4o-mini")
    assert call.kind == SpanKind.CLIENT
    attributes = call.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.request.model"] == attributes["gen_ai.response.model"]
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert tuple(attributes["gen_ai.response.finish_reasons"]) == ("stop",)
    assert "error.type" not in attributes
    # One trace: request -> model call -> the SDK's HTTP request (httpx2, instrumented).
    assert call.parent.span_id == server.context.span_id
    upstream = [
        s
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.CLIENT and s.parent and s.parent.span_id == call.context.span_id
    ]
    assert upstream, [s.name for s in spans.get_finished_spans()]
    assert all(s.context.trace_id == server.context.trace_id for s in upstream)
    # Message contents are not span attributes.
    assert not any(
        "Hello" in str(v) for s in spans.get_finished_spans() for v in s.attributes.values()
    )


def test_streamed_call_is_traced_inside_its_request(spans, served_chat):
    chat, client, fakes = served_chat
    fakes.anthropic.enqueue(text="one two", chunks=2, usage=(4, 2))
    with client.stream(
        "POST",
        f"/api/v1/chats/{chat.id}/messages/stream",
        json={"content": "count", "provider": "anthropic"},
    ) as response:
        body = response.read().decode()
    assert "message.completed" in body

    [server] = finished(spans, "POST /api/v1/chats/{chat_pk}/messages/stream")
    [call] = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert call.attributes["gen_ai.provider.name"] == "anthropic"
    assert call.attributes["gen_ai.usage.output_tokens"] == 2
    assert call.context.trace_id == server.context.trace_id


def test_tool_call_span_sits_between_the_two_model_calls(spans, served_chat):
    chat, client, fakes = served_chat
    fakes.openai.enqueue(
        tool_calls=[{"name": "calculator", "arguments": {"expression": "15 * 23"}, "id": "c1"}]
    )
    fakes.openai.enqueue(text="345")
    response = client.post(f"/api/v1/chats/{chat.id}/messages", json={"content": "15*23?"})
    assert response.status_code == 200, response.text

    [server] = finished(spans, "POST /api/v1/chats/{chat_pk}/messages")
    [tool] = finished(spans, "execute_tool calculator")
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "calculator"
    assert tool.attributes["gen_ai.tool.call.id"] == "c1"
    assert tool.attributes["llmwrapper.tool.kind"] == "builtin"
    assert tool.status.status_code != StatusCode.ERROR
    first, second = sorted(finished(spans, "chat gpt-4o-mini"), key=lambda s: s.start_time)
    assert first.end_time <= tool.start_time and tool.end_time <= second.start_time
    assert tool.context.trace_id == server.context.trace_id
    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)


def test_failing_tool_and_failing_model_call_are_marked_as_errors(spans, served_chat):
    chat, client, fakes = served_chat
    fakes.openai.enqueue(tool_calls=[{"name": "calculator", "arguments": {"expression": "1/0"}}])
    fakes.openai.enqueue(status=400, error_message="context too long")
    response = client.post(f"/api/v1/chats/{chat.id}/messages", json={"content": "1/0?"})
    assert response.status_code == 400, response.text

    [tool] = finished(spans, "execute_tool calculator")
    assert tool.status.status_code == StatusCode.ERROR
    assert tool.attributes["error.type"]
    calls = sorted(finished(spans, "chat gpt-4o-mini"), key=lambda s: s.start_time)
    assert calls[-1].status.status_code == StatusCode.ERROR
    assert calls[-1].attributes["error.type"] == "provider_bad_request"


def test_nothing_is_recorded_once_tracing_is_off(spans, served_chat):
    chat, client, fakes = served_chat
    tracing.shutdown_tracing()
    assert not tracing.enabled()
    fakes.openai.enqueue(text="quiet")
    assert client.post(f"/api/v1/chats/{chat.id}/messages", json={"content": "hi"}).is_success
    time.sleep(0.2)
    assert spans.get_finished_spans() == ()


def test_configuring_twice_installs_once_and_adds_the_processor(spans, served_chat):
    chat, client, _ = served_chat
    second = InMemorySpanExporter()
    provider = tracing.configure_tracing(processor=SimpleSpanProcessor(second), set_global=False)
    assert provider is tracing.configure_tracing(
        processor=SimpleSpanProcessor(InMemorySpanExporter()), set_global=False
    )
    client.get(f"/api/v1/chats/{chat.id}")
    assert finished(spans, "GET /api/v1/chats/{pk}")
    assert finished(second, "GET /api/v1/chats/{pk}")


def test_outgoing_calls_outside_any_request_are_not_traced(spans, llm_fakes):
    url = f"{llm_fakes.openai.base_url}/models"
    httpx.get(url, timeout=5)  # e.g. a background poll: no request above it
    assert spans.get_finished_spans() == ()
    with tracing.tracer().start_as_current_span("a request"):
        httpx.get(url, timeout=5)
    assert [s.name for s in spans.get_finished_spans()] == ["GET", "a request"]
