"""Embeddings: the official `openai` SDK and langchain-openai against `/v1/embeddings`,
and the native `/api/v1/llm/embed`, with each vendor's fake behind them."""

import base64
import json
import logging
from array import array
from decimal import Decimal

import openai
import pytest
from langchain_openai import OpenAIEmbeddings

from llmwrapper.observability.logging import JsonFormatter
from providers.core.vendors.ollama import OllamaProvider
from providers.models import LlmCall, Price
from providers.prices import price_cache_clear
from providers.records import wait_idle
from providers.testing import fake_vector
from tenants.limits import budget_period
from tenants.models import ApiKey, TokenUsage

pytestmark = pytest.mark.django_db(transaction=True)

TEXTS = ["the first text", "a second one", "third"]


@pytest.fixture
def sdk(make_tenant, live_server_url, llm_fakes):
    subtenant, raw, _ = make_tenant("embedder")
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=raw, max_retries=0)
    return client, subtenant, llm_fakes


def floats(packed: str) -> list[float]:
    """OpenAI's base64 embedding (little-endian float32) as floats."""
    return array("f", base64.b64decode(packed)).tolist()


def test_a_list_is_embedded_in_order_with_its_indexes(sdk):
    client, _, fakes = sdk
    result = client.embeddings.create(
        model="openai/text-embedding-3-small", input=TEXTS, encoding_format="float", user="u-1"
    )
    assert [item.index for item in result.data] == [0, 1, 2]
    assert [item.embedding for item in result.data] == [fake_vector(t) for t in TEXTS]
    assert result.model == "openai/text-embedding-3-small"
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (7, 7)
    (sent,) = fakes.openai.embedding_requests()
    # OpenAI itself is asked for packed floats, as its SDK does.
    assert sent.body == {
        "model": "text-embedding-3-small",
        "input": TEXTS,
        "encoding_format": "base64",
    }
    assert fakes.openai.chat_requests() == []


def test_the_sdks_default_call_gets_base64_and_decodes_it(sdk):
    client, _, _ = sdk
    result = client.embeddings.create(model="openai/text-embedding-3-small", input="hello world")
    assert [item.embedding for item in result.data] == [fake_vector("hello world")]


def test_explicit_base64_is_little_endian_float32(sdk):
    client, _, fakes = sdk
    for model, fake in (("openai/text-embedding-3-small", fakes.openai), ("local/bge-m3", None)):
        result = client.embeddings.create(model=model, input=TEXTS, encoding_format="base64")
        assert all(isinstance(item.embedding, str) for item in result.data)
        # From packed bytes (OpenAI) or floats the vendor sent (Ollama): the same values.
        assert [floats(item.embedding) for item in result.data] == [fake_vector(t) for t in TEXTS]
        if fake is not None:
            assert fake.embedding_requests()[-1].body["encoding_format"] == "base64"


def test_dimensions_are_forwarded(sdk):
    client, _, fakes = sdk
    result = client.embeddings.create(
        model="openai/text-embedding-3-large", input="short", dimensions=4, encoding_format="float"
    )
    assert result.data[0].embedding == fake_vector("short", 4)
    assert fakes.openai.embedding_requests()[-1].body["dimensions"] == 4
    client.embeddings.create(model="local/nomic-embed-text", input="short", dimensions=4)
    assert fakes.local.embedding_requests()[-1].body["dimensions"] == 4


def test_ollama_embeds_through_api_embed(sdk):
    client, subtenant, fakes = sdk
    result = client.embeddings.create(
        model="local/nomic-embed-text", input=TEXTS, encoding_format="float"
    )
    assert [item.embedding for item in result.data] == [fake_vector(t) for t in TEXTS]
    assert result.model == "local/nomic-embed-text"
    assert result.usage.prompt_tokens == 7
    (sent,) = fakes.local.embedding_requests()
    assert sent.path == "/api/embed"
    assert sent.body == {"model": "nomic-embed-text", "input": TEXTS}
    wait_idle()
    call = LlmCall.objects.get(subtenant=subtenant)
    assert (call.provider, call.model, call.source) == ("local", "nomic-embed-text", "embeddings")


def test_a_private_cloud_embeds_through_its_embeddings_route(sdk):
    client, _, fakes = sdk
    result = client.embeddings.create(model="private/BAAI/bge-m3", input=TEXTS)
    assert [item.embedding for item in result.data] == [fake_vector(t) for t in TEXTS]
    assert result.model == "private/BAAI/bge-m3"
    (sent,) = fakes.private.embedding_requests()
    assert sent.body["model"] == "BAAI/bge-m3"
    assert sent.body["encoding_format"] == "float"  # what every compatible server speaks


def test_an_alias_and_a_bare_name_resolve_as_for_chats(sdk, settings):
    client, _, fakes = sdk
    settings.MODEL_ALIASES = {"embedder": "local/nomic-embed-text"}
    result = client.embeddings.create(model="embedder", input="x")
    assert result.model == "local/nomic-embed-text"
    assert fakes.local.embedding_requests()[-1].body["model"] == "nomic-embed-text"
    bare = client.embeddings.create(model="text-embedding-3-small", input="x")
    assert bare.model == "openai/text-embedding-3-small"  # DEFAULT_LLM_PROVIDER


def test_anthropic_does_not_embed_and_is_not_called(sdk):
    client, _, fakes = sdk
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model="anthropic/claude-sonnet-5", input="x")
    assert raised.value.code == "embeddings_not_supported"
    assert "does not do embeddings" in raised.value.message
    assert fakes.anthropic.requests == []


def test_token_ids_pass_to_openai_and_are_refused_for_ollama(sdk):
    client, _, fakes = sdk
    result = client.embeddings.create(
        model="openai/text-embedding-3-small", input=[[1, 2, 3], [4, 5]], encoding_format="float"
    )
    assert [item.embedding for item in result.data] == [fake_vector([1, 2, 3]), fake_vector([4, 5])]
    assert result.usage.prompt_tokens == 5
    assert fakes.openai.embedding_requests()[-1].body["input"] == [[1, 2, 3], [4, 5]]
    one = client.embeddings.create(model="openai/text-embedding-3-small", input=[7, 8, 9])
    assert len(one.data) == 1
    assert fakes.openai.embedding_requests()[-1].body["input"] == [[7, 8, 9]]
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model="local/nomic-embed-text", input=[[1, 2, 3]])
    assert "embeds text only" in raised.value.message
    assert fakes.local.requests == []


@pytest.mark.parametrize(
    "value", ["", [], ["ok", ""], [["x"]], [[]], [1, "two"], {"text": "x"}, [True, False]]
)
def test_malformed_input_is_a_400(sdk, value):
    client, _, fakes = sdk
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model="openai/text-embedding-3-small", input=value)
    assert raised.value.param == "input"
    assert fakes.openai.requests == []


def test_a_large_request_is_split_into_the_vendors_batches(sdk, monkeypatch):
    client, subtenant, fakes = sdk
    monkeypatch.setattr(OllamaProvider, "max_embedding_inputs", 2)
    texts = [f"text number {i}" for i in range(7)]
    result = client.embeddings.create(
        model="local/nomic-embed-text", input=texts, encoding_format="float"
    )
    assert [item.index for item in result.data] == list(range(7))
    assert [item.embedding for item in result.data] == [fake_vector(t) for t in texts]
    batches = [r.body["input"] for r in fakes.local.embedding_requests()]
    assert sorted(len(b) for b in batches) == [1, 2, 2, 2]
    assert sorted(t for b in batches for t in b) == sorted(texts)
    assert result.usage.prompt_tokens == 21
    wait_idle()
    (call,) = LlmCall.objects.filter(subtenant=subtenant)
    assert (call.source, call.status, call.input_tokens, call.output_tokens) == (
        "embeddings",
        "ok",
        21,
        0,
    )


def test_usage_is_recorded_and_counts_against_the_budget(make_tenant, live_server_url, llm_fakes):
    subtenant, raw, _ = make_tenant("budgeted", token_budget=100)
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=raw, max_retries=0)
    llm_fakes.openai.enqueue(usage=(40, 0))
    client.embeddings.create(model="openai/text-embedding-3-small", input=TEXTS)
    wait_idle()
    call = LlmCall.objects.get(subtenant=subtenant)
    assert (call.source, call.provider, call.model, call.input_tokens) == (
        "embeddings",
        "openai",
        "text-embedding-3-small",
        40,
    )
    assert TokenUsage.objects.get(subtenant=subtenant).tokens == 40


def test_an_exhausted_budget_is_a_429_before_any_call(make_tenant, live_server_url, llm_fakes):
    subtenant, raw, _ = make_tenant("spent", token_budget=10)
    start, _ = budget_period(subtenant)
    TokenUsage.objects.create(subtenant=subtenant, period_start=start, tokens=10)
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=raw, max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        client.embeddings.create(model="openai/text-embedding-3-small", input="x")
    assert raised.value.code == "insufficient_quota"
    assert int(raised.value.response.headers["Retry-After"]) >= 1
    assert llm_fakes.openai.requests == []


def test_a_keys_dollar_budget_applies_to_embeddings(make_tenant, llm_fakes):
    subtenant, _, client = make_tenant("priced")
    ApiKey.objects.filter(subtenant=subtenant).update(budget_usd=Decimal("0.005"))
    Price.objects.create(connection="openai", model="text-embedding-3-*", input=1000, output=0)
    price_cache_clear()
    body = {"model": "openai/text-embedding-3-small", "input": TEXTS}
    assert client.post("/api/v1/llm/embed", body, format="json").status_code == 200
    wait_idle()
    assert LlmCall.objects.get(subtenant=subtenant).cost_usd == Decimal("0.007")  # 7 tokens
    refused = client.post("/api/v1/llm/embed", body, format="json")
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "budget_exhausted"
    assert len(llm_fakes.openai.embedding_requests()) == 1


def test_request_rate_limits_apply(make_tenant, live_server_url, llm_fakes):
    _, raw, _ = make_tenant("hasty", rate_limit_rpm=1)
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=raw, max_retries=0)
    client.embeddings.create(model="openai/text-embedding-3-small", input="x")
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model="openai/text-embedding-3-small", input="x")


def test_a_key_is_required(live_server_url, llm_fakes):
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key="lw_unknown", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.embeddings.create(model="openai/text-embedding-3-small", input="x")


def test_vendor_failures_are_retried_then_reported(sdk):
    client, subtenant, fakes = sdk
    fakes.openai.enqueue(status=503, retry_after=0)
    result = client.embeddings.create(model="openai/text-embedding-3-small", input="x")
    assert len(result.data) == 1 and len(fakes.openai.embedding_requests()) == 2
    for _ in range(3):
        fakes.openai.enqueue(status=429, retry_after=0)
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model="openai/text-embedding-3-small", input="x")
    fakes.openai.enqueue(status=400, error_message="This model does not support dimensions")
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model="openai/text-embedding-ada-002", input="x", dimensions=8)
    assert "does not support dimensions" in raised.value.message
    wait_idle()
    statuses = sorted(LlmCall.objects.filter(subtenant=subtenant).values_list("status", flat=True))
    assert statuses == ["error", "error", "ok"]


def test_langchain_openai_embeddings(sdk, live_server_url):
    _, _, fakes = sdk
    key = sdk[0].api_key
    # check_embedding_ctx_length=True (the default) tokenizes with tiktoken, which
    # downloads its encoding on first use; the gateway takes the token ids it then
    # sends too (see test_token_ids_pass_to_openai_and_are_refused_for_ollama).
    embeddings = OpenAIEmbeddings(
        model="openai/text-embedding-3-small",
        base_url=f"{live_server_url}/v1",
        api_key=key,
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    assert embeddings.embed_documents(TEXTS) == [fake_vector(t) for t in TEXTS]
    assert embeddings.embed_query("a question") == fake_vector("a question")
    local = OpenAIEmbeddings(
        model="local/nomic-embed-text",
        base_url=f"{live_server_url}/v1",
        api_key=key,
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    assert local.embed_documents(TEXTS) == [fake_vector(t) for t in TEXTS]
    assert fakes.local.embedding_requests()[-1].body["input"] == TEXTS


def test_an_admin_key_is_refused_on_the_openai_surface(admin_key, live_server_url, llm_fakes):
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=admin_key, max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="openai/text-embedding-3-small", input="x")


# The native API ------------------------------------------------------------------


def test_native_embed_answers_in_the_products_shape(make_tenant, llm_fakes):
    subtenant, _, client = make_tenant("native")
    response = client.post(
        "/api/v1/llm/embed",
        {"provider": "local", "model": "nomic-embed-text", "input": TEXTS},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "provider": "local",
        "model": "nomic-embed-text",
        "embeddings": [fake_vector(t) for t in TEXTS],
        "usage": {"input_tokens": 7, "output_tokens": 0, "total_tokens": 7},
    }
    packed = client.post(
        "/api/v1/llm/embed",
        {"model": "openai/text-embedding-3-small", "input": "x", "encoding_format": "base64"},
        format="json",
    ).json()
    assert (packed["provider"], packed["model"]) == ("openai", "text-embedding-3-small")
    assert floats(packed["embeddings"][0]) == fake_vector("x")
    wait_idle()
    assert LlmCall.objects.filter(subtenant=subtenant, source="embeddings").count() == 2


def test_the_request_log_names_the_model_and_tokens(make_tenant, llm_fakes, caplog):
    caplog.set_level(logging.INFO)
    _, _, client = make_tenant("logged")
    body = {"model": "local/nomic-embed-text", "input": TEXTS}
    assert client.post("/api/v1/llm/embed", body, format="json").status_code == 200
    (line,) = [
        json.loads(JsonFormatter().format(r))
        for r in caplog.records
        if r.name == "llmwrapper.request"
    ]
    assert (line["provider"], line["model"], line["input_tokens"], line["llm_calls"]) == (
        "local",
        "nomic-embed-text",
        7,
        1,
    )
    assert TEXTS[0] not in json.dumps(line)


def test_native_errors_use_the_products_shape(make_tenant, llm_fakes):
    _, _, client = make_tenant("native-errors")
    refused = client.post(
        "/api/v1/llm/embed", {"model": "anthropic/claude-sonnet-5", "input": "x"}, format="json"
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["type"] == "embeddings_not_supported"
    assert error["details"]["provider"] == "anthropic"
    assert set(error["details"]["embedding_providers"]) == {"openai", "local", "private"}
    tokens = client.post(
        "/api/v1/llm/embed", {"model": "local/nomic-embed-text", "input": [[1, 2]]}, format="json"
    )
    assert tokens.status_code == 400
    assert tokens.json()["error"]["type"] == "validation_error"
    assert "input" in tokens.json()["error"]["details"]
    unknown = client.post(
        "/api/v1/llm/embed", {"model": "m", "input": "x", "stream": True}, format="json"
    )
    assert unknown.status_code == 400 and "stream" in unknown.json()["error"]["details"]
    llm_fakes.openai.enqueue(status=401, error_message="bad key")
    upstream = client.post("/api/v1/llm/embed", {"model": "m", "input": "x"}, format="json")
    assert upstream.status_code == 502
    assert upstream.json()["error"]["details"]["upstream_status"] == 401
    assert llm_fakes.anthropic.requests == []


def test_native_embed_with_an_admin_key_names_the_subtenant(make_tenant, admin_client, llm_fakes):
    subtenant, _, _ = make_tenant("billed")
    body = {"model": "openai/text-embedding-3-small", "input": "x"}
    missing = admin_client.post("/api/v1/llm/embed", body, format="json")
    assert missing.status_code == 400 and "subtenant" in missing.json()["error"]["details"]
    billed = admin_client.post(
        "/api/v1/llm/embed", {**body, "subtenant": str(subtenant.id)}, format="json"
    )
    assert billed.status_code == 200
    wait_idle()
    assert LlmCall.objects.get(subtenant=subtenant).source == "embeddings"


def test_a_subtenant_key_cannot_bill_another_tenant(make_tenant, llm_fakes):
    other, _, _ = make_tenant("other")
    _, _, client = make_tenant("nosy")
    response = client.post(
        "/api/v1/llm/embed",
        {"model": "openai/text-embedding-3-small", "input": "x", "subtenant": str(other.id)},
        format="json",
    )
    assert response.status_code == 404
    assert llm_fakes.openai.requests == []


def test_both_routes_are_in_the_schema(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert "post" in paths["/v1/embeddings"] and "post" in paths["/api/v1/llm/embed"]
