"""`GET /metrics`: counters after real traffic, bounded labels, and who may scrape."""

import re

import pytest
from django.test import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from chats.models import Chat
from conftest import async_client_for, read_sse

pytestmark = pytest.mark.django_db(transaction=True)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def client_at(address: str) -> AsyncClient:
    """A test client whose connection comes from `address` (the ASGI scope's client)."""

    class ClientAt(AsyncClient):
        def _base_scope(self, **request):  # type: ignore[no-untyped-def]
            return {**super()._base_scope(**request), "client": [address, 40000]}

    return ClientAt()


async def scrape(client: AsyncClient | None = None, **headers) -> str:
    response = await (client or AsyncClient()).get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture
def chat_setup(make_tenant, llm_fakes):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, provider="openai")
    other = Chat.objects.create(subtenant=subtenant, provider="openai")
    return subtenant, chat, other, async_client_for(raw), llm_fakes


async def send(client, chat, body, path="messages"):
    return await client.post(
        f"/api/v1/chats/{chat.id}/{path}", body, content_type="application/json"
    )


async def test_requests_provider_calls_and_tokens_are_counted(chat_setup):
    _, chat, _, client, fakes = chat_setup
    before = await scrape()
    fakes.openai.enqueue(text="hello", usage=(7, 2))
    assert (await send(client, chat, {"content": "hi"})).status_code == 200
    after = await scrape()

    route = {"method": "POST", "route": "/api/v1/chats/{chat_pk}/messages"}
    name = "llmwrapper_http_requests_total"
    assert (
        value(after, name, status="200", **route) == value(before, name, status="200", **route) + 1
    )
    duration = "llmwrapper_http_request_duration_seconds_count"
    assert value(after, duration, **route) == value(before, duration, **route) + 1

    model = {"provider": "openai", "model": "gpt-4o-mini"}
    calls = "llmwrapper_provider_calls_total"
    assert (
        value(after, calls, status="ok", **model) == value(before, calls, status="ok", **model) + 1
    )
    tokens = "llmwrapper_provider_tokens_total"
    for direction, count in (("input", 7), ("output", 2)):
        grown = value(after, tokens, direction=direction, **model) - value(
            before, tokens, direction=direction, **model
        )
        assert grown == count
    first_token = "llmwrapper_provider_time_to_first_token_seconds_count"
    assert value(after, first_token, **model) == value(before, first_token, **model) + 1


async def test_labels_are_route_patterns_without_ids_or_tenants(chat_setup):
    subtenant, chat, other, client, _ = chat_setup
    for target in (chat, other):
        assert (await client.get(f"/api/v1/chats/{target.id}")).status_code == 200
    text = await scrape()
    assert value(text, "llmwrapper_http_requests_total", route="/api/v1/chats/{pk}") >= 2
    assert not UUID.search(text)
    assert str(subtenant.id) not in text


async def test_provider_errors_are_counted_by_type_including_retried_attempts(chat_setup, settings):
    _, chat, _, client, fakes = chat_setup
    settings.PROVIDER_MAX_RETRIES = 1
    before = await scrape()
    fakes.openai.enqueue(status=503, error_message="overloaded")
    fakes.openai.enqueue(text="recovered")
    assert (await send(client, chat, {"content": "hi"})).status_code == 200
    fakes.openai.enqueue(status=400, error_message="nope")
    assert (await send(client, chat, {"content": "hi"})).status_code == 400
    after = await scrape()

    errors = "llmwrapper_provider_errors_total"
    for type_ in ("provider_error", "provider_bad_request"):
        labels = {"provider": "openai", "type": type_}
        assert value(after, errors, **labels) == value(before, errors, **labels) + 1
    failed = {"provider": "openai", "model": "gpt-4o-mini", "status": "error"}
    calls = "llmwrapper_provider_calls_total"
    assert value(after, calls, **failed) == value(before, calls, **failed) + 1


async def test_made_up_model_names_do_not_become_labels(chat_setup):
    _, chat, _, client, fakes = chat_setup
    fakes.openai.enqueue(status=404, error_message="The model does not exist")
    response = await send(client, chat, {"content": "hi", "model": "made-up-model-9f2c"})
    assert response.status_code >= 400
    text = await scrape()
    assert "made-up-model-9f2c" not in text
    assert value(text, "llmwrapper_provider_calls_total", model="other", status="error") >= 1


async def test_tool_calls_are_counted_by_kind_and_name(chat_setup):
    _, chat, _, client, fakes = chat_setup
    before = await scrape()
    fakes.openai.enqueue(
        tool_calls=[
            {"name": "calculator", "arguments": {"expression": "6 * 7"}},
            {"name": "calculator", "arguments": {"expression": "1 / 0"}},
        ]
    )
    fakes.openai.enqueue(text="42")
    assert (await send(client, chat, {"content": "6*7?"})).status_code == 200
    after = await scrape()

    name = "llmwrapper_tool_calls_total"
    for status in ("ok", "error"):
        labels = {"kind": "builtin", "tool": "calculator", "status": status}
        assert value(after, name, **labels) == value(before, name, **labels) + 1


async def test_open_sse_streams_are_gauged(chat_setup):
    _, chat, _, client, fakes = chat_setup
    gauge = "llmwrapper_active_streams"
    idle = value(await scrape(), gauge, transport="sse")
    fakes.openai.enqueue(text="a b c d", chunks=4)
    response = await send(client, chat, {"content": "go"}, path="messages/stream")
    stream = aiter(response.streaming_content)
    await anext(stream)  # message.created: the stream is open
    assert value(await scrape(), gauge, transport="sse") == idle + 1
    async for _ in stream:
        pass
    assert value(await scrape(), gauge, transport="sse") == idle


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/chat/completions",
            {
                "model": "openai/gpt-4o-mini",
                "stream": True,
                "messages": [{"role": "user", "content": "go"}],
            },
        ),
        ("/v1/responses", {"model": "openai/gpt-4o-mini", "stream": True, "input": "go"}),
        (
            "/v1/messages",
            {
                "model": "openai/gpt-4o-mini",
                "stream": True,
                "max_tokens": 50,
                "messages": [{"role": "user", "content": "go"}],
            },
        ),
    ],
)
async def test_open_streams_of_the_vendor_compatible_surfaces_are_gauged(chat_setup, path, body):
    _, _, _, client, fakes = chat_setup
    gauge = "llmwrapper_active_streams"
    idle = value(await scrape(), gauge, transport="sse")
    fakes.openai.enqueue(text="a b c d", chunks=4)
    response = await client.post(path, body, content_type="application/json")
    assert response.status_code == 200
    stream = aiter(response.streaming_content)
    await anext(stream)  # the first event: the stream is open
    assert value(await scrape(), gauge, transport="sse") == idle + 1
    async for _ in stream:
        pass
    assert value(await scrape(), gauge, transport="sse") == idle


async def test_streamed_requests_are_counted_when_the_stream_ends(chat_setup):
    _, chat, _, client, fakes = chat_setup
    route = {"method": "POST", "route": "/api/v1/chats/{chat_pk}/messages/stream"}
    name = "llmwrapper_http_requests_total"
    before = value(await scrape(), name, status="200", **route)
    fakes.openai.enqueue(text="streamed", usage=(3, 1))
    response = await send(client, chat, {"content": "go"}, path="messages/stream")
    await read_sse(response)
    assert value(await scrape(), name, status="200", **route) == before + 1


async def test_callers_outside_the_allowlist_are_refused(db, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.168.1.7"]
    response = await AsyncClient().get("/metrics")  # the test client is 127.0.0.1
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_denied"
    assert (await client_at("10.20.30.40").get("/metrics")).status_code == 200
    assert (await client_at("192.168.1.7").get("/metrics")).status_code == 200
    assert (await client_at("192.168.1.8").get("/metrics")).status_code == 403


async def test_a_configured_token_is_required(db, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    client = AsyncClient()
    missing = await client.get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "unauthenticated"
    assert missing["WWW-Authenticate"].startswith("Bearer")
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert await scrape(client, Authorization="Bearer scrape-secret")


async def test_token_and_allowlist_both_apply_and_star_allows_any_address(db, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    outsider = client_at("203.0.113.9")
    denied = await outsider.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert denied.status_code == 403
    settings.METRICS_ALLOWED_IPS = ["*"]
    assert await scrape(outsider, Authorization="Bearer scrape-secret")
