"""The hot lane (llmwrapper/lane.py) answers `POST /v1/chat/completions` as Django would.

Through uvicorn serving the real ASGI application: each request is sent twice, once as
the lane takes it and once with a query string (which the endpoint ignores and the
lane leaves to Django), and the two answers are compared header by header. Django's
handler records the requests it sees, so each test also knows which path answered.
"""

from __future__ import annotations

import json
import logging
import re
import time

import httpx
import pytest
from django.conf import settings as django_settings

from llmwrapper.asgi_handler import ReusedThreadsASGIHandler
from llmwrapper.tests.test_metrics import value
from providers.models import LlmCall
from providers.records import wait_idle

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/v1/chat/completions"
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
DIRECT = "/api/v1/llm/complete"
DIRECT_STREAM = "/api/v1/llm/stream"
DIRECT_BODY = {"provider": "openai", "messages": [{"role": "user", "content": "Hi"}]}
RESPONSES = "/v1/responses"
MESSAGES = "/v1/messages"
MESSAGES_BODY = {
    "model": "openai/gpt-4o-mini",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "Hi"}],
}
LANE_PATHS = (PATH, DIRECT, DIRECT_STREAM, RESPONSES, MESSAGES)
CHAT_PATH = re.compile(r"/api/v1/chats/[^/]+/messages(/stream)?")
# What differs between two answers to the same request.
UNIQUE = re.compile(
    rb'"(chatcmpl-[0-9a-f]+|msg_[0-9a-f]+|created":\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'
)


@pytest.fixture
def django_saw(monkeypatch):
    """The requests to the lane's paths Django's handler got, as (path, query string)."""
    seen: list[tuple[str, bytes]] = []
    handle = ReusedThreadsASGIHandler.__call__

    async def recording(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["path"] in LANE_PATHS or CHAT_PATH.fullmatch(scope["path"]):
            seen.append((scope["path"], scope.get("query_string", b"")))
        await handle(self, scope, receive, send)

    monkeypatch.setattr(ReusedThreadsASGIHandler, "__call__", recording)
    return seen


@pytest.fixture
def caller(make_tenant, live_server_url, llm_fakes, django_saw):
    """A client whose key the server remembers (one request through Django first)."""
    subtenant, raw, _ = make_tenant("lane")
    client = httpx.Client(
        base_url=live_server_url, headers={"Authorization": f"Bearer {raw}"}, timeout=10
    )
    assert client.get("/v1/models").status_code == 200
    django_saw.clear()
    yield client, subtenant, llm_fakes
    client.close()


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    varying = ("date", "x-request-id")
    headers = [(k, v) for k, v in response.headers.multi_items() if k not in varying]
    return response.status_code, headers, UNIQUE.sub(b'"unique"', response.content)


def _both(client: httpx.Client, fakes, script: dict, body: dict, django_saw, path=PATH, **headers):
    """The answers of the lane and of Django to the same request, each scripted alike."""
    answers = []
    for query in ("", "?via=django"):
        fakes.openai.enqueue(**script)
        answers.append(client.post(path + query, json=body, headers=headers))
    assert django_saw == [(path, b"via=django")]
    return answers


@pytest.mark.parametrize(
    ("script", "body"),
    [
        ({"text": "Hello from upstream", "usage": (5, 3)}, BODY),
        ({"text": "one two three", "chunks": 3, "usage": (2, 3)}, {**BODY, "stream": True}),
        (
            {"text": "a b", "chunks": 2},
            {**BODY, "stream": True, "stream_options": {"include_usage": True}},
        ),
        ({"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}, "id": "call_1"}]}, BODY),
        ({"status": 404, "error_message": "The model `gpt-9` does not exist"}, BODY),
        ({"status": 429, "error_message": "slow down", "retry_after": 7}, BODY),
        ({"status": 429, "error_message": "slow down", "retry_after": 7}, {**BODY, "stream": True}),
    ],
    ids=["completion", "stream", "stream-usage", "tool-call", "404", "429", "429-stream"],
)
def test_the_lane_answers_what_django_answers(caller, django_saw, script, body):
    client, _, fakes = caller
    lane, django = _both(client, fakes, script, body, django_saw)
    assert _comparable(lane) == _comparable(django)
    assert lane.headers["x-request-id"] != django.headers["x-request-id"]


@pytest.mark.parametrize(
    ("path", "script", "body"),
    [
        (DIRECT, {"text": "Hello", "usage": (5, 3)}, DIRECT_BODY),
        (DIRECT, {"tool_calls": [{"name": "f", "arguments": {}, "id": "c1"}]}, DIRECT_BODY),
        (DIRECT, {"status": 404, "error_message": "no such model"}, DIRECT_BODY),
        (DIRECT, {"status": 429, "error_message": "slow down", "retry_after": 7}, DIRECT_BODY),
        (DIRECT_STREAM, {"text": "one two three", "chunks": 3}, DIRECT_BODY),
        (DIRECT_STREAM, {"status": 401, "error_message": "bad vendor key"}, DIRECT_BODY),
        (DIRECT, {"text": "x"}, {**DIRECT_BODY, "provider": "nope"}),
    ],
    ids=["complete", "tool-call", "404", "429", "stream", "stream-401", "unknown-provider"],
)
def test_the_lane_answers_direct_calls_as_django_does(caller, django_saw, path, script, body):
    client, _, fakes = caller
    lane, django = _both(client, fakes, script, body, django_saw, path=path)
    assert _comparable(lane) == _comparable(django)


def test_a_callers_request_id_is_echoed(caller, django_saw):
    client, _, fakes = caller
    lane, django = _both(
        client, fakes, {"text": "x"}, BODY, django_saw, **{"X-Request-ID": "trace-42"}
    )
    assert lane.headers["x-request-id"] == django.headers["x-request-id"] == "trace-42"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Origin": "https://app.example"}, BODY),
        ({"X-Chat-ID": "not-a-chat"}, BODY),
        ({"Accept": "text/event-stream"}, BODY),
        ({"Content-Type": "text/plain"}, None),
        ({}, {"model": "openai/gpt-4o-mini"}),  # invalid: Django says why
        ({}, {**BODY, "temperature": float("nan")}),  # JSON the service refuses
        ({}, [BODY]),
    ],
    ids=["cors", "chat-id", "sse-accept", "not-json", "invalid", "nan", "not-an-object"],
)
def test_what_the_lane_leaves_to_django_is_answered_there(caller, django_saw, headers, body):
    client, _, fakes = caller
    fakes.openai.enqueue(text="x")
    content = json.dumps(body if body is not None else BODY).encode()
    headers = {"Content-Type": "application/json", **headers}
    answer = client.post(PATH, content=content, headers=headers)
    assert django_saw == [(PATH, b"")]
    assert answer.status_code in (200, 400, 404, 415)
    assert answer.headers["x-request-id"]


@pytest.mark.parametrize(
    "body",
    [
        {**DIRECT_BODY, "unknown": 1},  # the direct API's serializers are strict
        {**DIRECT_BODY, "subtenant": "00000000-0000-0000-0000-000000000000"},
        {**DIRECT_BODY, "tools": [{"type": "function"}]},
    ],
    ids=["unknown-field", "names-a-subtenant", "bad-tools"],
)
def test_direct_calls_the_lane_leaves_to_django(caller, django_saw, body):
    client, _, fakes = caller
    fakes.openai.enqueue(text="x")
    answer = client.post(DIRECT, json=body)
    assert django_saw == [(DIRECT, b"")]
    assert answer.status_code in (400, 404) and answer.json()["error"]["type"]


def test_an_admin_key_goes_through_django(admin_key, live_server_url, llm_fakes, django_saw):
    client = httpx.Client(
        base_url=live_server_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=10
    )
    assert client.get("/api/v1/llm/models").status_code == 200
    answer = client.post(DIRECT, json=DIRECT_BODY)
    assert answer.status_code == 400 and "subtenant" in answer.json()["error"]["details"]
    assert django_saw == [(DIRECT, b"")]


def test_a_key_the_process_does_not_remember_goes_through_django(
    make_tenant, live_server_url, llm_fakes, django_saw
):
    _, raw, _ = make_tenant("cold")
    llm_fakes.openai.enqueue(text="x")
    answer = httpx.post(
        live_server_url + PATH, json=BODY, headers={"Authorization": f"Bearer {raw}"}
    )
    assert answer.status_code == 200 and django_saw == [(PATH, b"")]
    bad = httpx.post(live_server_url + PATH, json=BODY, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"


def test_a_body_over_the_limit_is_refused_by_django(caller, django_saw):
    client, _, _ = caller
    limit = django_settings.MAX_CONTENT_REQUEST_BYTES
    text = "x" * limit
    answer = client.post(PATH, json={**BODY, "messages": [{"role": "user", "content": text}]})
    assert answer.status_code == 413 and django_saw == [(PATH, b"")]
    assert answer.json()["error"]["type"] == "request_too_large"


def test_the_lane_logs_counts_and_records_its_requests(caller, django_saw, caplog):
    client, subtenant, fakes = caller
    before = _requests_counted(client)
    fakes.openai.enqueue(text="Hello", usage=(4, 2))
    with caplog.at_level(logging.INFO, logger="llmwrapper.request"):
        answer = client.post(PATH, json=BODY)
    assert answer.status_code == 200 and django_saw == []
    request_id = answer.headers["x-request-id"]
    line = next(r for r in caplog.records if getattr(r, "request_id", None) == request_id)
    assert (line.route, line.status, line.model, line.input_tokens) == (
        PATH,
        200,
        "gpt-4o-mini",
        4,
    )
    assert line.key_prefix and line.subtenant_id == str(subtenant.pk)
    assert _requests_counted(client) == before + 1
    assert wait_idle(timeout=10)
    call = LlmCall.objects.get(subtenant=subtenant)
    assert (call.source, call.status, call.input_tokens) == ("openai_compat", "ok", 4)


def test_a_stream_the_client_leaves_is_counted_open_then_closed_and_recorded(caller, django_saw):
    client, subtenant, fakes = caller
    idle = _gauge(client)
    fakes.openai.enqueue(text="a b c d e f", chunks=6, chunk_delay=0.3)
    with client.stream("POST", PATH, json={**BODY, "stream": True}) as stream:
        assert stream.status_code == 200
        chunks = stream.iter_raw()
        next(chunks)
        assert _gauge(client) == idle + 1
    deadline = time.monotonic() + 10
    while _gauge(client) != idle and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gauge(client) == idle
    assert django_saw == []
    assert wait_idle(timeout=10)
    call = LlmCall.objects.get(subtenant=subtenant)
    assert call.status == "interrupted"


def _metrics(client: httpx.Client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


def _requests_counted(client: httpx.Client) -> float:
    labels = {"method": "POST", "route": PATH, "status": "200"}
    return value(_metrics(client), "llmwrapper_http_requests_total", **labels)


def _gauge(client: httpx.Client) -> float:
    return value(_metrics(client), "llmwrapper_active_streams", transport="sse")


# Chat sends: two sends differ in ids, sequence numbers and times, so their answers are
# compared by shape (the same keys, holding the same types) and their headers exactly.


def _shape(value):  # type: ignore[no-untyped-def]
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _events(response: httpx.Response) -> list[tuple[str, object]]:
    events = []
    for block in response.text.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            events.append((fields["event"], _shape(json.loads(fields["data"]))))
    return events


def _same_answer(lane: httpx.Response, django: httpx.Response) -> None:
    status, headers, _ = _comparable(lane)
    assert (status, headers) == _comparable(django)[:2]
    if lane.headers["content-type"] == "text/event-stream":
        assert _events(lane) == _events(django)
    else:
        assert _shape(lane.json()) == _shape(django.json())


@pytest.fixture
def chat(caller):
    client, subtenant, _ = caller
    created = client.post(f"/api/v1/subtenants/{subtenant.pk}/chats", json={"title": "lane"})
    assert created.status_code == 201, created.text
    return f"/api/v1/chats/{created.json()['id']}/messages"


@pytest.mark.parametrize(
    ("suffix", "script"),
    [
        ("", {"text": "Hello", "usage": (3, 2)}),
        ("/stream", {"text": "one two three", "chunks": 3}),
        ("", {"status": 429, "error_message": "slow down", "retry_after": 7}),
        ("/stream", {"status": 400, "error_message": "bad request upstream"}),
    ],
    ids=["send", "stream", "send-429", "stream-400"],
)
def test_the_lane_sends_to_a_chat_as_django_does(caller, chat, django_saw, suffix, script):
    client, _, fakes = caller
    path = chat + suffix
    answers = []
    for query in ("", "?via=django"):
        fakes.openai.enqueue(**script)
        answers.append(client.post(path + query, json={"content": "Hi"}))
    assert django_saw == [(path, b"via=django")]
    _same_answer(*answers)


def test_an_idempotent_send_replays_on_the_lane(caller, chat, django_saw):
    client, _, fakes = caller
    fakes.openai.enqueue(text="only once")
    headers = {"Idempotency-Key": "k-1"}
    first = client.post(chat, json={"content": "pay"}, headers=headers)
    again = client.post(chat, json={"content": "pay"}, headers=headers)
    replayed = client.post(chat + "/stream", json={"content": "pay"}, headers=headers)
    assert django_saw == []
    assert first.status_code == again.status_code == replayed.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.text.count("event: message.completed") == 1
    assert len(fakes.openai.chat_requests()) == 1
    other = client.post(chat, json={"content": "other"}, headers=headers)
    assert other.status_code == 409


def test_sends_the_lane_leaves_to_django(caller, chat, django_saw):
    client, _, _ = caller
    missing = "/api/v1/chats/00000000-0000-4000-8000-000000000000/messages"
    lane_404 = client.post(missing, json={"content": "x"})
    django_404 = client.post(missing + "?via=django", json={"content": "x"})
    assert lane_404.status_code == 404 and _comparable(lane_404) == _comparable(django_404)
    assert client.post(missing, json={"nope": 1}).status_code == 404  # Django: chat first
    assert client.post(chat, json={"nope": 1}).status_code == 400
    assert django_saw == [(missing, b"via=django"), (missing, b""), (chat, b"")]


@pytest.mark.parametrize(
    ("script", "body"),
    [
        ({"text": "Hello", "usage": (3, 2)}, {"model": "openai/gpt-4o-mini", "input": "Hi"}),
        (
            {"text": "one two three", "chunks": 3},
            {"model": "openai/gpt-4o-mini", "input": "Hi", "stream": True},
        ),
        (
            {"status": 429, "error_message": "slow down", "retry_after": 7},
            {"model": "openai/gpt-4o-mini", "input": "Hi", "store": False},
        ),
    ],
    ids=["create", "stream", "429"],
)
def test_the_lane_creates_responses_as_django_does(caller, django_saw, script, body):
    client, _, fakes = caller
    lane, django = _both(client, fakes, script, body, django_saw, path=RESPONSES)
    _same_answer(lane, django)


@pytest.mark.parametrize(
    ("script", "body"),
    [
        ({"text": "Hello from upstream", "usage": (5, 3)}, MESSAGES_BODY),
        (
            {"text": "one two three", "chunks": 3, "usage": (2, 3)},
            {**MESSAGES_BODY, "stream": True},
        ),
        (
            {"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}, "id": "call_1"}]},
            MESSAGES_BODY,
        ),
        ({"status": 404, "error_message": "no such model"}, MESSAGES_BODY),
        ({"status": 429, "error_message": "slow down", "retry_after": 7}, MESSAGES_BODY),
        (
            {"status": 429, "error_message": "slow down", "retry_after": 7},
            {**MESSAGES_BODY, "stream": True},
        ),
    ],
    ids=["message", "stream", "tool-use", "404", "429", "429-stream"],
)
def test_the_lane_answers_anthropic_messages_as_django_does(caller, django_saw, script, body):
    client, _, fakes = caller
    lane, django = _both(client, fakes, script, body, django_saw, path=MESSAGES)
    assert _comparable(lane) == _comparable(django)


def test_an_anthropic_client_authenticates_on_the_lane_with_x_api_key(caller, django_saw):
    client, subtenant, fakes = caller
    raw = client.headers["Authorization"].removeprefix("Bearer ")
    headers = {"x-api-key": raw, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=str(client.base_url), headers=headers, timeout=10) as anthropic:
        fakes.openai.enqueue(text="Hello", usage=(4, 2))
        answer = anthropic.post(MESSAGES, json=MESSAGES_BODY)
        assert answer.status_code == 200, answer.text
        assert answer.json()["content"] == [{"type": "text", "text": "Hello"}]
        assert django_saw == []
        # The Anthropic API only: elsewhere x-api-key is no key, answered by Django.
        refused = anthropic.post(PATH, json=BODY)
        assert refused.status_code == 401 and django_saw == [(PATH, b"")]
    assert wait_idle(timeout=10)
    call = LlmCall.objects.get(subtenant=subtenant)
    assert (call.source, call.input_tokens) == ("anthropic_compat", 4)


def test_anthropic_messages_the_lane_leaves_to_django(admin_key, caller, django_saw):
    client, _, fakes = caller
    fakes.openai.enqueue(text="x")
    invalid = client.post(MESSAGES, json={"model": "openai/gpt-4o-mini", "messages": []})
    assert invalid.status_code == 400 and invalid.json()["type"] == "error"
    with httpx.Client(
        base_url=str(client.base_url), headers={"x-api-key": admin_key}, timeout=10
    ) as admin:
        # The first call makes the process remember the key; the second still needs a
        # subtenant key, which only Django says.
        answers = [admin.post(MESSAGES, json=MESSAGES_BODY) for _ in range(2)]
    for answer in answers:
        assert answer.status_code == 403 and answer.json()["error"]["type"] == "permission_error"
    assert django_saw == [(MESSAGES, b"")] * 3
