"""Stored connections and routes through HTTP against the app, with several fake vendor
servers on the loopback interface."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import client_for
from providers.models import LlmCall
from providers.records import wait_idle
from providers.testing import FakeAnthropic, FakeOpenAI
from providers.testing.azure import FakeAzureOpenAI

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def vendors():
    with FakeOpenAI() as one, FakeOpenAI() as two, FakeOpenAI() as three:
        yield one, two, three


def ask(client, model: str | None, text: str = "Hi", **extra):
    body = {"messages": [{"role": "user", "content": text}], **extra}
    if model:
        body["model"] = model
    return client.post("/api/v1/llm/complete", body, format="json")


def connection(client, name, base_url, **fields):
    body = {"name": name, "kind": "openai_compatible", "base_url": base_url, **fields}
    response = client.post("/api/v1/connections", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_an_admin_connection_is_used_by_name_with_its_own_key_and_never_shown(
    admin_client, make_tenant, vendors, llm_fakes
):
    fake = vendors[0]
    row = connection(
        admin_client,
        "vllm-a",
        fake.base_url,
        api_key="sk-vllm-secret-key-1234",
        headers={"X-Team": "ml"},
        default_model="llama-3",
    )
    assert row["api_key"] == "****1234" and row["headers"] == ["X-Team"]
    assert "sk-vllm" not in str(admin_client.get("/api/v1/connections").json())
    _, _, tenant = make_tenant("acme")
    fake.enqueue(text="From vLLM A.")
    response = ask(tenant, "vllm-a/llama-3.1-8b")
    assert response.status_code == 200, response.content
    assert response.json()["provider"] == "vllm-a"
    received = fake.chat_requests()[-1]
    assert received.headers["authorization"] == "Bearer sk-vllm-secret-key-1234"
    assert received.headers["x-team"] == "ml" and received.body["model"] == "llama-3.1-8b"
    fake.enqueue(text="Default model.")
    assert ask(tenant, None, provider="vllm-a").json()["message"]["content"] == "Default model."
    assert fake.chat_requests()[-1].body["model"] == "llama-3"
    # The built-in providers still work as before.
    llm_fakes.openai.enqueue(text="Built-in.")
    assert ask(tenant, "openai/gpt-4o-mini").json()["message"]["content"] == "Built-in."


def test_a_subtenants_own_connection_sends_its_key_and_is_invisible_to_others(
    make_tenant, vendors, settings, llm_fakes
):
    fake = vendors[0]
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    _, _, acme = make_tenant("acme")
    _, _, other = make_tenant("other")
    row = connection(acme, "mykey", fake.base_url, api_key="sk-acme-own-key-9999")
    assert row["subtenant"] is not None
    fake.enqueue(text="Acme's own.")
    response = ask(acme, "mykey/gpt-4o")
    assert response.status_code == 200, response.content
    assert fake.chat_requests()[-1].headers["authorization"] == "Bearer sk-acme-own-key-9999"

    assert other.get("/api/v1/connections/mykey").status_code == 404
    assert other.get("/api/v1/connections").json()["count"] == 0
    # For another tenant "mykey/gpt-4o" is a model name of the default provider...
    assert ask(other, "mykey/gpt-4o").json()["provider"] == "openai"
    # ...and the connection, named as a provider, does not exist.
    refused = ask(other, "gpt-4o", provider="mykey")
    assert refused.status_code == 400 and refused.json()["error"]["type"] == "unknown_provider"
    assert len(fake.chat_requests()) == 1


def test_a_subtenant_connection_shadows_a_global_one_of_its_name(
    admin_client, make_tenant, vendors, settings
):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    connection(admin_client, "shared", vendors[0].base_url, api_key="sk-global-key-0000")
    _, _, acme = make_tenant("acme")
    _, _, other = make_tenant("other")
    connection(acme, "shared", vendors[1].base_url, api_key="sk-acme-key-1111")
    vendors[1].enqueue(text="acme's")
    vendors[0].enqueue(text="global")
    assert ask(acme, "shared/m").json()["message"]["content"] == "acme's"
    assert ask(other, "shared/m").json()["message"]["content"] == "global"


def test_a_subtenant_connection_to_a_private_address_is_refused(make_tenant, vendors):
    _, _, acme = make_tenant("acme")
    for url in (vendors[0].base_url, "https://10.1.2.3/v1", "ftp://example.com/"):
        body = {"name": "sneaky", "kind": "openai_compatible", "base_url": url}
        response = acme.post("/api/v1/connections", body, format="json")
        assert response.status_code == 400, (url, response.content)
        assert "base_url" in response.json()["error"]["details"]
    assert vendors[0].chat_requests() == []


def test_connection_api_validation_and_lifecycle(admin_client, make_tenant, vendors):
    bad = admin_client.post(
        "/api/v1/connections", {"name": "no spaces", "kind": "gemini"}, format="json"
    )
    assert bad.status_code == 400
    assert set(bad.json()["error"]["details"]) == {"name", "kind"}
    connection(admin_client, "c1", vendors[0].base_url, api_key="sk-first-key-aaaa")
    again = admin_client.post(
        "/api/v1/connections",
        {"name": "c1", "kind": "openai", "base_url": vendors[0].base_url},
        format="json",
    )
    assert again.status_code == 409
    changed = admin_client.put(
        "/api/v1/connections/c1", {"api_key": "sk-second-key-bbbb", "timeout": 20}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["api_key"] == "****bbbb"
    _, _, tenant = make_tenant("acme")
    vendors[0].enqueue(text="ok")
    assert ask(tenant, "c1/m").status_code == 200
    assert vendors[0].chat_requests()[-1].headers["authorization"] == "Bearer sk-second-key-bbbb"
    # A subtenant key sees only its own: the global one is not its to change.
    assert tenant.put("/api/v1/connections/c1", {"timeout": 5}, format="json").status_code == 404
    assert admin_client.delete("/api/v1/connections/c1").status_code == 204
    assert ask(tenant, "c1/m").status_code == 400


def test_azure_openai_speaks_azures_url_scheme_and_key_header(admin_client, make_tenant):
    with FakeAzureOpenAI(api_key="azure-key-5678") as fake:
        fake.enqueue(text="From Azure.")
        connection(
            admin_client,
            "azure",
            fake.resource_url,
            kind="azure_openai",
            api_key="azure-key-5678",
            api_version="2024-10-21",
            default_model="gpt4o-deployment",
        )
        _, _, tenant = make_tenant("acme")
        response = ask(tenant, None, provider="azure")
        assert response.status_code == 200, response.content
        assert response.json()["message"]["content"] == "From Azure."
        received = fake.chat_requests()[-1]
        assert received.path == "/openai/deployments/gpt4o-deployment/chat/completions"
        assert received.query == "api-version=2024-10-21"
        assert received.headers["api-key"] == "azure-key-5678"
        assert "authorization" not in received.headers


def test_an_anthropic_connection(admin_client, make_tenant):
    with FakeAnthropic() as fake:
        connection(
            admin_client, "claude-team", fake.base_url, kind="anthropic", api_key="sk-ant-team-1"
        )
        fake.enqueue(text="Claude here.")
        _, _, tenant = make_tenant("acme")
        response = ask(tenant, "claude-team/claude-sonnet-5")
        assert response.status_code == 200, response.content
        headers = fake.chat_requests()[-1].headers
        # The SDK sends the key as x-api-key or as a bearer token, by its version.
        assert "sk-ant-team-1" in (headers.get("x-api-key"), headers.get("authorization", "")[7:])


# -- routes --------------------------------------------------------------------------------


def route(client, name, deployments, **fields):
    response = client.post(
        "/api/v1/routes", {"name": name, "deployments": deployments, **fields}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def two_deployments(admin_client, vendors):
    connection(admin_client, "dep-a", vendors[0].base_url)
    connection(admin_client, "dep-b", vendors[1].base_url)
    connection(admin_client, "dep-c", vendors[2].base_url)
    return vendors


def test_a_route_spreads_requests_by_weight(admin_client, make_tenant, two_deployments):
    a, b, _ = two_deployments
    route(
        admin_client,
        "gpt-fast",
        [
            {"connection": "dep-a", "model": "m-a", "weight": 3},
            {"connection": "dep-b", "model": "m-b", "weight": 1},
        ],
    )
    subtenant, _, tenant = make_tenant("acme")
    for _ in range(80):
        assert ask(tenant, "gpt-fast").status_code == 200
    counts = Counter({"a": len(a.chat_requests()), "b": len(b.chat_requests())})
    assert counts["a"] + counts["b"] == 80
    assert 40 <= counts["a"] <= 75 and counts["b"] >= 5, counts
    assert {r.body["model"] for r in a.chat_requests()} == {"m-a"}
    wait_idle()
    providers = set(LlmCall.objects.filter(subtenant=subtenant).values_list("provider", flat=True))
    assert providers == {"dep-a", "dep-b"}
    listed = [m["id"] for m in tenant.get("/v1/models").json()["data"]]
    assert "gpt-fast" in listed


def test_a_failing_deployment_cools_down_and_the_other_serves(
    admin_client, make_tenant, two_deployments
):
    a, b, _ = two_deployments
    route(
        admin_client,
        "balanced",
        [{"connection": "dep-a", "weight": 1}, {"connection": "dep-b", "weight": 1}],
        cooldown_seconds=60,
    )
    _, _, tenant = make_tenant("acme")
    for _ in range(3):
        a.enqueue(status=503, error_message="overloaded")
    for _ in range(20):
        response = ask(tenant, "balanced")
        assert response.status_code == 200, response.content
    # dep-a failed once (drawn at least once in 20: all but certain), then rested: it
    # was not called again within the cooldown.
    assert len(a.chat_requests()) == 1
    assert len(b.chat_requests()) >= 19


def test_a_lower_priority_serves_while_the_higher_one_rests(
    admin_client, make_tenant, two_deployments
):
    a, _, c = two_deployments
    route(
        admin_client,
        "tiered",
        [{"connection": "dep-a", "priority": 0}, {"connection": "dep-c", "priority": 1}],
        cooldown_seconds=60,
    )
    _, _, tenant = make_tenant("acme")
    a.enqueue(text="primary")
    assert ask(tenant, "tiered").json()["message"]["content"] == "primary"
    a.enqueue(status=429, error_message="slow down", retry_after=0)
    c.enqueue(text="backup")
    assert ask(tenant, "tiered").json()["message"]["content"] == "backup"
    c.enqueue(text="backup again")
    assert ask(tenant, "tiered").json()["message"]["content"] == "backup again"
    assert len(a.chat_requests()) == 2  # resting: not asked the third time


def test_when_every_deployment_rests_the_answer_is_503_with_retry_after(
    admin_client, make_tenant, two_deployments
):
    a, _, _ = two_deployments
    route(admin_client, "single", [{"connection": "dep-a"}], cooldown_seconds=30)
    _, _, tenant = make_tenant("acme")
    for _ in range(3):
        a.enqueue(status=500, error_message="boom")
    assert ask(tenant, "single").status_code == 502  # retried (nothing else to try), failed
    response = ask(tenant, "single")
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "route_unavailable"
    assert 1 <= int(response["Retry-After"]) <= 30


def test_route_validation_and_scoping(
    admin_client, make_tenant, two_deployments, settings, llm_fakes
):
    bad = admin_client.post(
        "/api/v1/routes", {"name": "r", "deployments": [{"connection": "nope"}]}, format="json"
    )
    assert bad.status_code == 400 and "deployments" in bad.json()["error"]["details"]
    assert (
        admin_client.post(
            "/api/v1/routes", {"name": "has/slash", "deployments": []}, format="json"
        ).status_code
        == 400
    )
    _, _, acme = make_tenant("acme")
    _, _, other = make_tenant("other")
    route(acme, "mine", [{"connection": "dep-a"}])
    assert other.get("/api/v1/routes/mine").status_code == 404
    two_deployments[0].enqueue(text="acme route")
    assert ask(acme, "mine").json()["message"]["content"] == "acme route"
    # For another tenant "mine" is only a model name of the default provider.
    assert ask(other, "mine").json()["provider"] == settings.DEFAULT_LLM_PROVIDER


def test_admin_lists_connections_of_a_subtenant(admin_client, make_tenant, vendors, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    subtenant, raw, acme = make_tenant("acme")
    connection(acme, "own", vendors[0].base_url)
    listed = admin_client.get(f"/api/v1/connections?subtenant={subtenant.pk}").json()
    assert [c["name"] for c in listed["results"]] == ["own"]
    assert admin_client.get("/api/v1/connections").json()["count"] == 0
    assert client_for(raw).get("/api/v1/connections/own").status_code == 200


@pytest.mark.redis
def test_a_cooldown_is_shared_by_every_process(admin_client, make_tenant, app_process, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: without Redis each process rests its deployments alone")
    import httpx

    with FakeOpenAI() as a, FakeOpenAI() as b:
        connection(admin_client, "dep-a", a.base_url)
        connection(admin_client, "dep-b", b.base_url)
        route(
            admin_client,
            "shared",
            [{"connection": "dep-a", "priority": 0}, {"connection": "dep-b", "priority": 1}],
            cooldown_seconds=60,
        )
        _, raw, _ = make_tenant("acme")
        first, second = app_process(), app_process()

        def ask_at(url: str) -> httpx.Response:
            body = {"model": "shared", "messages": [{"role": "user", "content": "Hi"}]}
            headers = {"Authorization": f"Bearer {raw}"}
            return httpx.post(f"{url}/api/v1/llm/complete", json=body, headers=headers, timeout=20)

        a.enqueue(status=503, error_message="overloaded")
        assert ask_at(first).json()["provider"] == "dep-b"  # dep-a failed and rests
        for _ in range(3):
            assert ask_at(second).json()["provider"] == "dep-b"
        assert len(a.chat_requests()) == 1  # the other process never asked it
