"""The request log: one JSON line per request, with who called and what the model did."""

import json
import logging
import re
import sys
import time

import httpx
import pytest

from chats.models import Chat
from conftest import async_client_for, read_sse
from llmwrapper.observability.logging import JsonFormatter
from tenants.models import ApiKey

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_QUESTION = "my bank password is hunter2-zebra"
SECRET_ANSWER = "noted, the zebra is safe"


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def request_lines(caplog) -> list[dict]:
    """The request log's lines, as the JSON formatter writes them."""
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "llmwrapper.request"
    ]


def all_output(caplog) -> str:
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)


@pytest.fixture
def tenant_chat(make_tenant, llm_fakes):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, title="t", provider="openai")
    key = ApiKey.objects.get(subtenant=subtenant)
    return subtenant, key, raw, chat, llm_fakes


async def test_each_request_logs_one_line_with_route_status_key_prefix_and_subtenant(
    tenant_chat, logs
):
    subtenant, key, raw, chat, _ = tenant_chat
    response = await async_client_for(raw).get(f"/api/v1/chats/{chat.id}")
    assert response.status_code == 200

    [line] = request_lines(logs)
    assert line["request_id"] == response["X-Request-ID"]
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/chats/{pk}"
    assert line["path"] == f"/api/v1/chats/{chat.id}"
    assert line["status"] == 200
    assert line["latency_ms"] >= 0
    assert line["key_prefix"] == key.prefix
    assert line["subtenant_id"] == str(subtenant.id)
    assert line["logger"] == "llmwrapper.request" and line["level"] == "INFO"
    assert "provider" not in line  # no model was called
    assert raw not in all_output(logs)


async def test_llm_call_is_logged_with_provider_model_and_tokens_but_no_content(tenant_chat, logs):
    _, key, raw, chat, fakes = tenant_chat
    fakes.openai.enqueue(text=SECRET_ANSWER, usage=(7, 2))
    response = await async_client_for(raw).post(
        f"/api/v1/chats/{chat.id}/messages",
        {"content": SECRET_QUESTION},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content

    [line] = request_lines(logs)
    assert line["route"] == "/api/v1/chats/{chat_pk}/messages"
    assert (line["provider"], line["model"]) == ("openai", "gpt-4o-mini")
    assert (line["input_tokens"], line["output_tokens"], line["llm_calls"]) == (7, 2, 1)
    assert line["key_prefix"] == key.prefix
    output = all_output(logs)
    for secret in (SECRET_QUESTION, "hunter2", SECRET_ANSWER, raw):
        assert secret not in output


async def test_streamed_request_is_logged_when_its_stream_ends(tenant_chat, logs):
    _, _, raw, chat, fakes = tenant_chat
    fakes.openai.enqueue(text="one two three", chunks=3, usage=(5, 3))
    response = await async_client_for(raw).post(
        f"/api/v1/chats/{chat.id}/messages/stream",
        {"content": SECRET_QUESTION},
        content_type="application/json",
    )
    # The model is called while the response streams: nothing is logged before that.
    assert request_lines(logs) == []
    events = await read_sse(response)
    assert events[-1][0] == "message.completed"

    [line] = request_lines(logs)
    assert line["request_id"] == response["X-Request-ID"]
    assert line["route"] == "/api/v1/chats/{chat_pk}/messages/stream"
    assert line["stream"] == "completed"
    assert (line["provider"], line["input_tokens"], line["output_tokens"]) == ("openai", 5, 3)
    assert SECRET_QUESTION not in all_output(logs)


def test_stream_left_early_is_logged_as_interrupted(tenant_chat, logs, live_server_url):
    _, _, raw, chat, fakes = tenant_chat
    fakes.openai.enqueue(text="a b c d e f g h", chunks=8, chunk_delay=0.1)
    with (
        httpx.Client(base_url=live_server_url, timeout=10) as http,
        http.stream(
            "POST",
            f"/api/v1/chats/{chat.id}/messages/stream",
            json={"content": "go"},
            headers={"Authorization": f"Bearer {raw}"},
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("event: delta"):
                break  # the model is answering: the client goes away
    deadline = time.monotonic() + 5
    while not request_lines(logs) and time.monotonic() < deadline:
        time.sleep(0.02)

    [line] = request_lines(logs)
    assert line["stream"] == "interrupted"
    assert line["llm_error"] == "cancelled"
    assert line["status"] == 200


async def test_tool_loop_sums_the_tokens_of_every_round(tenant_chat, logs):
    _, _, raw, chat, fakes = tenant_chat
    fakes.openai.enqueue(
        tool_calls=[{"name": "calculator", "arguments": {"expression": "6 * 7"}}], usage=(10, 4)
    )
    fakes.openai.enqueue(text="42", usage=(20, 1))
    response = await async_client_for(raw).post(
        f"/api/v1/chats/{chat.id}/messages", {"content": "6*7?"}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    [line] = request_lines(logs)
    assert (line["llm_calls"], line["input_tokens"], line["output_tokens"]) == (2, 30, 5)


async def test_direct_call_failure_logs_the_provider_error_type(tenant_chat, logs):
    _, _, raw, _, llm_fakes = tenant_chat
    llm_fakes.anthropic.enqueue(status=400, error_message="bad things")
    response = await async_client_for(raw).post(
        "/api/v1/llm/complete",
        {"provider": "anthropic", "messages": [{"role": "user", "content": "hi"}]},
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    [line] = request_lines(logs)
    assert line["provider"] == "anthropic"
    assert line["llm_error"] == "provider_bad_request"
    assert line["status"] == 400


async def test_incoming_request_id_is_kept_and_echoed(tenant_chat, logs):
    _, _, raw, chat, _ = tenant_chat
    response = await async_client_for(raw).get(
        f"/api/v1/chats/{chat.id}", headers={"X-Request-ID": "edge-7f3a.42_x"}
    )
    assert response["X-Request-ID"] == "edge-7f3a.42_x"
    assert request_lines(logs)[0]["request_id"] == "edge-7f3a.42_x"


@pytest.mark.parametrize("incoming", ["has spaces", "x" * 129, 'quote"s', "line\nbreak"])
async def test_unsafe_request_id_is_replaced_by_a_generated_one(tenant_chat, logs, incoming):
    _, _, raw, chat, _ = tenant_chat
    response = await async_client_for(raw).get(
        f"/api/v1/chats/{chat.id}", headers={"X-Request-ID": incoming}
    )
    generated = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert request_lines(logs)[0]["request_id"] == generated
    assert incoming not in all_output(logs)


async def test_every_response_gets_a_request_id_even_errors_and_unknown_paths(logs):
    client = async_client_for(None)
    unauthenticated = await client.get("/api/v1/subtenants")
    unknown = await client.get("/nowhere")
    assert unauthenticated.status_code == 401 and unknown.status_code == 404
    assert unauthenticated["X-Request-ID"] != unknown["X-Request-ID"]
    first, second = request_lines(logs)
    assert (first["route"], first["status"], first["key_prefix"]) == (
        "/api/v1/subtenants",
        401,
        None,
    )
    assert (second["route"], second["status"]) == ("unmatched", 404)


async def test_content_logging_setting_adds_truncated_bodies_with_keys_redacted(
    admin_key, tenant_chat, logs, settings
):
    settings.LOG_CONTENT = True
    settings.LOG_CONTENT_MAX_CHARS = 400
    subtenant = tenant_chat[0]
    response = await async_client_for(admin_key).post(
        f"/api/v1/subtenants/{subtenant.id}/keys",
        {"name": "ci key with a recognisable name"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    new_key = response.json()["key"]

    [line] = request_lines(logs)
    assert "ci key with a recognisable name" in line["request_body"]
    assert "lw_[redacted]" in line["response_body"]
    output = all_output(logs)
    assert new_key not in output and admin_key not in output


async def test_content_logging_cuts_long_bodies(tenant_chat, logs, settings):
    settings.LOG_CONTENT = True
    settings.LOG_CONTENT_MAX_CHARS = 50
    _, _, raw, chat, fakes = tenant_chat
    fakes.openai.enqueue(text="short")
    await async_client_for(raw).post(
        f"/api/v1/chats/{chat.id}/messages", {"content": "z" * 500}, content_type="application/json"
    )
    [line] = request_lines(logs)
    assert line["request_body"].endswith("…[truncated]")
    assert len(line["request_body"]) <= 50 + len("…[truncated]")


def test_json_formatter_writes_one_object_per_line_with_extras_and_exceptions():
    logger = logging.getLogger("llmwrapper.tests.formatter")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logger.makeRecord(
            logger.name, logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    record.chat_id = "c-1"
    text = JsonFormatter().format(record)
    assert "\n" not in text  # a traceback too stays on one line
    entry = json.loads(text)
    assert entry["message"] == "failed here" and entry["level"] == "ERROR"
    assert entry["chat_id"] == "c-1"
    assert "ValueError: boom" in entry["exc_info"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])


# Content logging redacts on the parsed body, so neither spelling nor shape hides a
# secret: an escaped key name, a credential inside a URL, header values with braces.
ESCAPED_NAME_SECRET = "escaped-name-secret-7c1d"
URL_SECRET = "url-query-secret-4b9e"
BRACED_SECRET = "braced-header-secret-2f8a"
CONTENT_CASES = {
    "escaped key name": (
        "/api/v1/mcp/servers",
        '{"name": "crm", "url": "http://127.0.0.1:9/mcp", "protocol": "http", '
        '"api\\u005fkey": "' + ESCAPED_NAME_SECRET + '"}',
        ESCAPED_NAME_SECRET,
        ['"name":"crm"', '"api_key":"[redacted]"'],
    ),
    "URL query": (
        "/api/v1/functions/register",
        '{"name": "notify_ops", "description": "Tell ops", '
        '"url": "http://127.0.0.1:9/hook?channel=ops&token=' + URL_SECRET + '"}',
        URL_SECRET,
        ['"name":"notify_ops"', "/hook?channel=ops&token=[redacted]"],
    ),
    "braces in header values": (
        "/api/v1/functions/register",
        '{"name": "signed_hook", "url": "http://127.0.0.1:9/hook", '
        '"headers": {"X-Signing-Key": "{v1}' + BRACED_SECRET + '}x{"}}',
        BRACED_SECRET,
        ['"name":"signed_hook"', '"headers":"[redacted]"'],
    ),
}


@pytest.mark.parametrize("case", list(CONTENT_CASES))
def test_content_logging_redacts_on_the_parsed_body(
    case, admin_key, live_server_url, logs, settings
):
    settings.LOG_CONTENT = True
    settings.LOG_CONTENT_MAX_CHARS = 2000
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    path, body, secret, visible = CONTENT_CASES[case]
    response = httpx.post(
        live_server_url + path,
        content=body.encode(),
        headers={"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"},
        timeout=30,
    )
    output = all_output(logs)
    assert secret not in output and admin_key not in output
    [line] = [entry for entry in request_lines(logs) if entry["path"] == path]
    assert line["status"] == response.status_code
    for text in visible:  # the rest of the body is still there
        assert text in line["request_body"], line["request_body"]
    if response.status_code == 201:  # the answer echoes the URL: redacted there too
        assert URL_SECRET not in line["response_body"]


def test_content_logging_redacts_bodies_that_are_not_json(
    admin_key, live_server_url, logs, settings
):
    settings.LOG_CONTENT = True
    body = f"name=x&api%5Fkey={URL_SECRET}&webhook=https://h.example/?access_token={BRACED_SECRET}"
    httpx.post(
        live_server_url + "/api/v1/subtenants",
        content=body.encode(),
        headers={
            "Authorization": f"Bearer {admin_key}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        timeout=10,
    )
    output = all_output(logs)
    assert URL_SECRET not in output and BRACED_SECRET not in output
    [line] = request_lines(logs)
    assert line["request_body"].startswith("name=x&api%5Fkey=[redacted]&webhook=https://h.")
