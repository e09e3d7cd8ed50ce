"""Input the database cannot hold, or the interpreter cannot parse, is a 400 up front.

Through HTTP against the running app: each refused request gets a 400 in the error
shape naming the problem, the fake vendor receives no request, and nothing is stored,
on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import json

import httpx
import pytest

from chats.models import Chat, Message
from memories.models import Memory
from providers.models import LlmCall
from tenants.models import Subtenant
from tools.models import Function

pytestmark = pytest.mark.django_db(transaction=True)

NUL = "a\u0000b"
SURROGATE = "a\ud800b"


def raw_json(value: object) -> bytes:
    """JSON text with \\u escapes, as a client would send NUL or a lone surrogate."""
    return json.dumps(value).encode()


@pytest.fixture
def tenant(make_tenant, llm_fakes, live_server_url):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, title="t", provider="openai")
    headers = {"Authorization": f"Bearer {raw}", "Content-Type": "application/json"}
    with httpx.Client(base_url=live_server_url, headers=headers, timeout=20) as http:
        yield http, subtenant, chat, llm_fakes


@pytest.fixture
def admin_http(admin_key, live_server_url):
    headers = {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=live_server_url, headers=headers, timeout=20) as http:
        yield http


def assert_refused(response: httpx.Response, *, status: int = 400) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] in ("validation_error", "malformed_request")
    assert error["details"]
    return error


def assert_nothing_happened(fakes, subtenant: Subtenant, chat: Chat) -> None:
    assert fakes.openai.chat_requests() == []
    assert not Message.objects.filter(chat=chat).exists()
    assert not LlmCall.objects.filter(subtenant=subtenant).exists()


# -- NUL characters -------------------------------------------------------------------


def test_nul_in_a_sent_message_is_refused_before_the_model_is_called(tenant):
    http, subtenant, chat, fakes = tenant
    tool = {"type": "function", "function": {"name": "lookup", "description": NUL}}
    for body in (
        {"content": "hi", "tools": [tool]},
        {"content": "hi", "stop": [NUL]},
        {"content": "hi", "tool_results": [{"tool_call_id": "call_1", "content": NUL}]},
        {"content": NUL},
    ):
        for path in (
            f"/api/v1/chats/{chat.id}/messages",
            f"/api/v1/chats/{chat.id}/messages/stream",
        ):
            error = assert_refused(http.post(path, content=raw_json(body)))
            assert error["details"] == {"reason": "invalid_text"}, body
            assert "NUL" in error["message"]
    assert_nothing_happened(fakes, subtenant, chat)


def test_nul_in_a_direct_call_is_refused_before_the_model_is_called(tenant):
    http, subtenant, chat, fakes = tenant
    for content in (NUL, [{"type": "text", "text": NUL}]):
        body = {"messages": [{"role": "user", "content": content}]}
        for path in ("/api/v1/llm/complete", "/api/v1/llm/stream"):
            assert_refused(http.post(path, content=raw_json(body)))
    assert_nothing_happened(fakes, subtenant, chat)


def test_nul_in_an_openai_compatible_request_with_a_chat_id_is_refused(tenant):
    http, subtenant, chat, fakes = tenant
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": NUL}]}
    for stream in (False, True):
        response = http.post(
            "/v1/chat/completions",
            content=raw_json({**body, "stream": stream}),
            headers={"X-Chat-ID": str(chat.id)},
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]  # OpenAI's error shape on /v1
        assert error["type"] == "invalid_request_error"
        assert "NUL" in error["message"]
    assert_nothing_happened(fakes, subtenant, chat)


def test_nul_in_memories_is_refused_and_nothing_is_stored(tenant):
    http, subtenant, _, _ = tenant
    base = f"/api/v1/subtenants/{subtenant.id}/memories"
    for body in (
        {"key": "lang", "value": NUL},
        {"key": "lang", "value": {"nested": [NUL]}},
        {"key": "lang", "value": {NUL: 1}},
        {"key": NUL, "value": "x"},
        {"key": "lang", "value": "x", "description": NUL},
    ):
        assert_refused(http.post(base, content=raw_json(body)))
    assert not Memory.objects.exists()

    assert http.post(base, json={"key": "lang", "value": "French"}).status_code == 201
    assert_refused(http.put(f"{base}/lang", content=raw_json({"value": NUL})))
    assert Memory.objects.get(key="lang").value == "French"


def test_nul_in_chat_fields_is_refused(tenant):
    http, subtenant, chat, _ = tenant
    base = f"/api/v1/subtenants/{subtenant.id}/chats"
    for body in ({"title": NUL}, {"metadata": {"tag": NUL}}, {"system_prompt": NUL}):
        assert_refused(http.post(base, content=raw_json(body)))
        assert_refused(http.put(f"/api/v1/chats/{chat.id}", content=raw_json(body)))
    assert Chat.objects.count() == 1
    chat.refresh_from_db()
    assert (chat.title, chat.metadata, chat.system_prompt) == ("t", {}, "")


def test_nul_in_a_function_schema_is_refused(tenant, settings):
    http, _, _, fakes = tenant
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    body = {
        "name": "lookup",
        "description": "Look things up",
        "url": f"{fakes.openai.url}/hook",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    for bad in (
        {**body, "description": NUL},
        {**body, "parameters": {"type": "object", "properties": {NUL: {"type": "string"}}}},
        {**body, "parameters": [{"name": "q", "type": "string", "description": NUL}]},
        {**body, "parameters": {"type": "object", "properties": {"q": {"enum": [NUL]}}}},
    ):
        assert_refused(http.post("/api/v1/functions/register", content=raw_json(bad)))
    assert not Function.objects.exists()
    assert http.post("/api/v1/functions/register", json=body).status_code == 201


def test_nul_in_the_path_or_query_string_is_refused(tenant, admin_http):
    http, subtenant, chat, _ = tenant
    memory = f"/api/v1/subtenants/{subtenant.id}/memories/a%00b"
    for method, path in (
        ("GET", memory),
        ("PUT", memory),
        ("DELETE", memory),
        ("POST", "/api/v1/functions/a%00b/execute"),
        ("POST", "/api/v1/mcp/tools/a%00b/execute"),
        ("DELETE", "/api/v1/functions/a%00b"),
        ("DELETE", "/api/v1/mcp/servers/a%00b"),
    ):
        error = assert_refused(http.request(method, path, json={"value": 1}))
        assert error["type"] == "validation_error"
        assert error["details"] == {"path": ["Text must not contain NUL characters (\\u0000)."]}
    error = assert_refused(admin_http.get("/api/v1/functions?subtenant=%00"))
    assert error["details"] == {"subtenant": ["Text must not contain NUL characters (\\u0000)."]}
    assert_refused(http.get(f"/api/v1/chats/{chat.id}/messages?offset=1%00"))


# -- unpaired surrogates --------------------------------------------------------------


def test_an_unpaired_surrogate_in_a_memory_is_refused_and_reads_keep_working(tenant):
    http, subtenant, chat, fakes = tenant
    base = f"/api/v1/subtenants/{subtenant.id}/memories"
    for body in (
        {"key": "lang", "value": SURROGATE},
        {"key": "lang", "value": ["ok", {"deep": SURROGATE}]},
        {"key": "lang", "value": "x", "description": SURROGATE},
    ):
        error = assert_refused(http.post(base, content=raw_json(body)))
        assert error["details"] == {"reason": "invalid_text"}
        assert "surrogate" in error["message"]
    assert not Memory.objects.exists()

    assert (
        http.post(base, json={"key": "lang", "value": "Fran\u00e7ais \U0001f600"}).status_code
        == 201
    )
    listed = http.get(base)
    assert listed.status_code == 200
    assert listed.json()["results"][0]["value"] == "Fran\u00e7ais \U0001f600"
    sent = http.post(
        f"/api/v1/chats/{chat.id}/messages", json={"content": "hi", "include_memories": True}
    )
    assert sent.status_code == 200, sent.text
    assert "Fran\u00e7ais" in json.dumps(fakes.openai.chat_requests()[-1].body, ensure_ascii=False)


def test_an_unpaired_surrogate_in_a_message_is_refused(tenant):
    http, subtenant, chat, fakes = tenant
    for body in (
        {"content": "hi", "response_format": {"type": SURROGATE}},
        {"content": "hi", "tool_results": [{"tool_call_id": "call_1", "content": SURROGATE}]},
    ):
        response = http.post(f"/api/v1/chats/{chat.id}/messages", content=raw_json(body))
        assert assert_refused(response)["details"] == {"reason": "invalid_text"}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": SURROGATE}]}]}
    assert_refused(http.post("/api/v1/llm/complete", content=raw_json(body)))
    assert_nothing_happened(fakes, subtenant, chat)


# -- nesting and numbers --------------------------------------------------------------


def test_deeply_nested_json_is_a_400_on_every_json_endpoint(tenant, admin_http):
    http, subtenant, chat, fakes = tenant
    deep = b"[" * 1000 + b"]" * 1000
    deep_object = b'{"value": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1000 + b', "key": "k"}'
    for client, path in (
        (admin_http, "/api/v1/subtenants"),
        (http, f"/api/v1/subtenants/{subtenant.id}/memories"),
        (http, f"/api/v1/subtenants/{subtenant.id}/chats"),
        (http, f"/api/v1/chats/{chat.id}/messages"),
        (http, f"/api/v1/chats/{chat.id}/messages/stream"),
        (http, "/api/v1/llm/complete"),
        (http, "/api/v1/llm/stream"),
        (http, "/api/v1/functions/register"),
        (http, "/api/v1/functions/calculator/execute"),
        (http, "/api/v1/mcp/servers"),
    ):
        for body in (deep, deep_object):
            error = assert_refused(client.post(path, content=body))
            assert error == {
                "type": "malformed_request",
                "message": "JSON is nested deeper than 64 levels.",
                "details": {"reason": "too_deep"},
            }, path
    response = http.post("/v1/chat/completions", content=deep)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert not Memory.objects.exists()
    assert_nothing_happened(fakes, subtenant, chat)


def test_numbers_json_cannot_represent_are_refused(tenant):
    http, subtenant, chat, fakes = tenant
    for body in (
        b'{"content": "hi", "response_format": {"type": "json_object", "x": 1e999}}',
        b'{"content": "hi", "tool_choice": {"weight": -1e400}}',
        b'{"content": "hi", "temperature": NaN}',
    ):
        response = http.post(f"/api/v1/chats/{chat.id}/messages", content=body)
        assert assert_refused(response)["details"] == {"reason": "invalid_number"}
    assert_nothing_happened(fakes, subtenant, chat)
    base = f"/api/v1/subtenants/{subtenant.id}/memories"
    for value in (b"1e999", b"[1, -1e400]", b"NaN", b"Infinity", b"-Infinity"):
        response = http.post(base, content=b'{"key": "n", "value": ' + value + b"}")
        assert assert_refused(response)["details"] == {"reason": "invalid_number"}
    assert not Memory.objects.exists()


# -- query parameters -----------------------------------------------------------------


def test_a_malformed_subtenant_parameter_on_tool_routes_is_a_400(admin_http):
    for method, path in (
        ("GET", "/api/v1/functions"),
        ("GET", "/api/v1/mcp/servers"),
        ("GET", "/api/v1/mcp/tools"),
        ("DELETE", "/api/v1/functions/lookup"),
        ("DELETE", "/api/v1/mcp/servers/tools"),
        ("POST", "/api/v1/functions/calculator/execute"),
        ("POST", "/api/v1/mcp/tools/x__y/execute"),
    ):
        response = admin_http.request(
            method, f"{path}?subtenant=not-a-uuid", json={"arguments": {}}
        )
        error = assert_refused(response)
        assert error["details"] == {"subtenant": ["Must be a valid UUID."]}, path
    assert admin_http.get("/api/v1/functions?subtenant=").status_code == 200


def test_the_format_parameter_is_ignored(tenant, live_server_url):
    http, *_ = tenant
    assert httpx.get(f"{live_server_url}/v1/models?format=xyz").status_code == 401
    assert http.get("/v1/models?format=xyz").status_code == 200
    assert http.get("/api/v1/llm/models?format=xyz").status_code == 200
    assert http.get("/api/v1/subtenants?format=api").status_code == 200


def test_usage_report_dates_at_the_edges_of_the_calendar(tenant, admin_http):
    _, subtenant, _, _ = tenant
    base = f"/api/v1/subtenants/{subtenant.id}/usage"
    for query in ("end=0001-01-01", "start=0001-01-01&end=0001-01-01", "end=0001-01-15"):
        response = admin_http.get(f"{base}?{query}")
        assert response.status_code == 200, (query, response.text)
        assert response.json()["start"] == "0001-01-01"
    assert admin_http.get(f"{base}?start=9999-12-31&end=9999-12-31").status_code == 200
    for query, field in (
        ("start=0001-01-01", "start"),
        ("start=0001-01-01&end=9999-12-31", "start"),
        ("start=2026-02-01&end=2026-01-01", "start"),
        ("start=0000-01-01", "start"),
        ("end=10000-01-01", "end"),
        ("start=yesterday", "start"),
    ):
        error = assert_refused(admin_http.get(f"{base}?{query}"))
        assert list(error["details"]) == [field], query


def test_malformed_pagination_parameters_are_a_400(tenant, admin_http):
    http, subtenant, chat, _ = tenant
    lists = (
        (admin_http, "/api/v1/subtenants"),
        (admin_http, "/api/v1/keys"),
        (admin_http, f"/api/v1/subtenants/{subtenant.id}/keys"),
        (http, f"/api/v1/subtenants/{subtenant.id}/chats"),
        (http, f"/api/v1/subtenants/{subtenant.id}/memories"),
        (http, f"/api/v1/chats/{chat.id}/messages"),
    )
    for client, path in lists:
        for query, field in (
            ("limit=abc", "limit"),
            ("limit=0", "limit"),
            ("limit=-5", "limit"),
            ("offset=-1", "offset"),
            ("offset=x", "offset"),
            ("offset=99999999999999999999999", "offset"),
            ("limit=" + "9" * 5000, "limit"),
        ):
            error = assert_refused(client.get(f"{path}?{query}"))
            assert list(error["details"]) == [field], (path, query)
        page = client.get(f"{path}?limit=500&offset=1000000")
        assert page.status_code == 200, page.text
        assert page.json()["results"] == []
        assert client.get(f"{path}?limit=&offset=").status_code == 200
