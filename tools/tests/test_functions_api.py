"""`/api/v1/functions` over HTTP: register, list, execute, delete."""

import pytest

from tools.models import Function
from tools.sandbox import Sandbox

pytestmark = pytest.mark.django_db

WEATHER_PARAMS = [
    {"name": "location", "type": "string", "description": "Location to check", "required": True}
]
SEED_CODE = "def weather_function(location): return f'Weather in {location}: Sunny, 25°C'"


@pytest.fixture
def allow_local(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


def register(client, **body):
    return client.post("/api/v1/functions/register", body, format="json")


def test_builtins_are_listed_with_json_schema(make_tenant):
    _, _, client = make_tenant()
    rows = {row["name"]: row for row in client.get("/api/v1/functions").json()["results"]}
    assert rows["calculator"]["kind"] == "builtin"
    assert rows["calculator"]["parameters"]["required"] == ["expression"]
    assert "get_current_time" in rows


def test_webhook_function_lifecycle(make_tenant, webhook, allow_local):
    subtenant, _, client = make_tenant()
    webhook.reply = {"forecast": "rain"}
    created = register(
        client,
        name="weather_check",
        description="Get weather for a location",
        parameters=WEATHER_PARAMS,
        url=webhook.url,
        headers={"X-Token": "s3cret-token"},
    )
    assert created.status_code == 201, created.content
    row = created.json()
    assert row["kind"] == "webhook" and row["subtenant"] == str(subtenant.id)
    assert row["parameters"] == {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "Location to check"}},
        "required": ["location"],
    }
    assert "s3cret-token" not in created.content.decode()

    listed = client.get("/api/v1/functions").json()["results"]
    assert "weather_check" in [r["name"] for r in listed]
    assert "s3cret-token" not in str(listed)

    run = client.post(
        "/api/v1/functions/weather_check/execute",
        {"arguments": {"location": "Oslo"}},
        format="json",
    )
    assert run.status_code == 200, run.content
    assert run.json()["result"] == {"forecast": "rain"}
    assert webhook.requests[-1]["body"] == {
        "name": "weather_check",
        "arguments": {"location": "Oslo"},
    }
    assert webhook.requests[-1]["headers"]["X-Token"] == "s3cret-token"
    assert "s3cret-token" not in Function.objects.get(name="weather_check").headers_sealed

    assert client.delete("/api/v1/functions/weather_check").status_code == 204
    assert (
        client.post("/api/v1/functions/weather_check/execute", {}, format="json").status_code == 404
    )


def test_arguments_are_validated_against_the_schema(make_tenant, webhook, allow_local):
    _, _, client = make_tenant()
    register(client, name="weather_check", parameters=WEATHER_PARAMS, url=webhook.url)
    missing = client.post(
        "/api/v1/functions/weather_check/execute", {"arguments": {}}, format="json"
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["type"] == "tool_input_error"
    assert "location" in missing.json()["error"]["details"]
    wrong = client.post(
        "/api/v1/functions/weather_check/execute", {"arguments": {"location": 5}}, format="json"
    )
    assert wrong.status_code == 400 and "location" in wrong.json()["error"]["details"]
    assert webhook.requests == []


def test_webhook_to_loopback_is_refused_unless_allowlisted(make_tenant, webhook, settings):
    _, _, client = make_tenant()
    settings.OUTBOUND_ALLOWED_HOSTS = []
    refused = register(client, name="local_hook", url=webhook.url)
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "unsafe_url"
    for url in (
        "http://169.254.169.254/latest",
        "http://10.0.0.1/x",
        "https://[::1]/x",
        "http://0x7f000001/",
    ):
        assert register(client, name="probe", url=url).status_code == 400
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    assert register(client, name="local_hook", url=webhook.url).status_code == 201


def test_names_follow_the_vendor_rule_and_are_unique(make_tenant, webhook, allow_local):
    _, _, client = make_tenant()
    for bad in ("has space", "x" * 65, "dots.not.allowed", ""):
        response = register(client, name=bad, url=webhook.url)
        assert response.status_code == 400 and "name" in response.json()["error"]["details"]
    assert register(client, name="calculator", url=webhook.url).status_code == 409
    assert register(client, name="dup", url=webhook.url).status_code == 201
    assert register(client, name="dup", url=webhook.url).status_code == 409


def test_invalid_json_schema_parameters_are_rejected(make_tenant, webhook, allow_local):
    _, _, client = make_tenant()
    for parameters in (
        {"type": "array"},
        {"type": "object", "properties": 5},
        [{"type": "string"}],
        "x",
    ):
        response = register(client, name="f", url=webhook.url, parameters=parameters)
        assert response.status_code == 400 and "parameters" in response.json()["error"]["details"]


def test_code_functions_need_an_admin_key_and_can_be_turned_off(
    make_tenant, admin_client, settings
):
    _, _, client = make_tenant()
    assert register(client, name="weather", code=SEED_CODE).status_code == 403
    settings.CODE_FUNCTIONS_ENABLED = False
    assert register(admin_client, name="weather", code=SEED_CODE).status_code == 403
    assert not Function.objects.exists()


@pytest.mark.skipif(not Sandbox().available()[0], reason="the sandbox (bubblewrap) is unavailable")
def test_seed_code_function_runs_in_the_sandbox(make_tenant, admin_client):
    _, _, client = make_tenant()
    created = register(
        admin_client, name="weather_check", parameters=WEATHER_PARAMS, code=SEED_CODE
    )
    assert created.status_code == 201, created.content
    run = client.post(
        "/api/v1/functions/weather_check/execute", {"location": "Paris"}, format="json"
    )
    assert run.status_code == 200, run.content
    assert run.json()["result"] == "Weather in Paris: Sunny, 25°C"


@pytest.mark.skipif(not Sandbox().available()[0], reason="the sandbox (bubblewrap) is unavailable")
def test_hostile_code_gets_a_clear_error(admin_client):
    register(admin_client, name="spin", code="def spin():\n    while True: pass")
    response = admin_client.post("/api/v1/functions/spin/execute", {}, format="json")
    assert response.status_code in (422, 504)
    assert response.json()["error"]["type"] in ("sandbox_timeout", "sandbox_limit_exceeded")


@pytest.mark.parametrize(
    ("expression", "status", "result"),
    [
        ("(2 + 3) * 4", 200, 20),
        ("15 * 23", 200, 345),
        ("9**9**9", 400, None),
        ("__import__('os').system('id')", 400, None),
        ("10**10**10", 400, None),
        ("1/0", 400, None),
    ],
)
def test_calculator_through_the_api(make_tenant, expression, status, result):
    _, _, client = make_tenant()
    response = client.post(
        "/api/v1/functions/calculator/execute",
        {"arguments": {"expression": expression}},
        format="json",
    )
    assert response.status_code == status, response.content
    if result is not None:
        assert response.json()["result"] == result
    else:
        assert response.json()["error"]["type"] == "tool_input_error"


def test_another_tenants_function_is_invisible(make_tenant, webhook, allow_local):
    _, _, owner = make_tenant("owner")
    _, _, other = make_tenant("other")
    register(owner, name="private_fn", url=webhook.url)
    assert "private_fn" not in [r["name"] for r in other.get("/api/v1/functions").json()["results"]]
    assert other.post("/api/v1/functions/private_fn/execute", {}, format="json").status_code == 404
    assert other.delete("/api/v1/functions/private_fn").status_code == 404
    assert Function.objects.filter(name="private_fn").exists()
    assert webhook.requests == []


def test_admin_global_function_is_offered_to_every_tenant(
    make_tenant, admin_client, webhook, allow_local
):
    _, _, client = make_tenant()
    assert register(admin_client, name="shared_fn", url=webhook.url).status_code == 201
    assert "shared_fn" in [r["name"] for r in client.get("/api/v1/functions").json()["results"]]
    # ...but a subtenant cannot remove it.
    assert client.delete("/api/v1/functions/shared_fn").status_code == 404


# What a caller sees of a function: a global one's URL and headers are admin data, and
# nobody sees a URL's query values.


def _api(base_url: str, key: str):
    import httpx

    return httpx.Client(
        base_url=f"{base_url}/api/v1",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        trust_env=False,
    )


@pytest.mark.django_db(transaction=True)
def test_a_global_webhooks_url_and_headers_stay_with_admins(
    live_server_url, make_tenant, admin_key, webhook, allow_local
):
    from tools.mcp.testing import TcpFront

    port = int(webhook.url.split(":")[2].split("/")[0])
    _, tenant_key, _ = make_tenant()
    with TcpFront(port) as front, _api(live_server_url, admin_key) as admin:
        url = front.url("http", "/hook?token=q-s3cret&v=1")
        body = {
            "name": "shared_hook",
            "description": "Shared weather",
            "parameters": WEATHER_PARAMS,
            "url": url,
            "headers": {"X-Token": "h-s3cret"},
        }
        created = admin.post("/functions/register", json=body)
        assert created.status_code == 201, created.text
        shown = front.url("http", "/hook?token=***&v=***")
        assert created.json()["url"] == shown and created.json()["has_headers"] is True
        admin_rows = {r["name"]: r for r in admin.get("/functions").json()["results"]}
        assert admin_rows["shared_hook"]["url"] == shown

        with _api(live_server_url, tenant_key) as tenant:
            own = tenant.post("/functions/register", json={"name": "own_hook", "url": url}).json()
            listing = tenant.get("/functions")
            run = tenant.post(
                "/functions/shared_hook/execute", json={"arguments": {"location": "Oslo"}}
            )

    rows = {r["name"]: r for r in listing.json()["results"]}
    assert rows["shared_hook"] == {
        "name": "shared_hook",
        "description": "Shared weather",
        "parameters": created.json()["parameters"],
        "kind": "webhook",
        "subtenant": None,
    }
    assert own["url"] == shown and rows["own_hook"]["url"] == shown
    for text in (created.text, listing.text, str(admin_rows)):
        assert "q-s3cret" not in text and "h-s3cret" not in text
    assert str(front.port) not in str(rows["shared_hook"])
    # Stored intact, and used as stored.
    assert run.status_code == 200, run.text
    assert front.connections == ["POST /hook?token=q-s3cret&v=1 HTTP/1.1"]
    assert webhook.requests[-1]["headers"]["X-Token"] == "h-s3cret"
    assert Function.objects.get(name="shared_hook").url == url


@pytest.mark.django_db(transaction=True)
def test_a_refused_webhook_host_is_not_mapped_to_its_address(
    live_server_url, make_tenant, monkeypatch
):
    import socket

    real_getaddrinfo = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        return real_getaddrinfo(
            "10.20.30.40" if host == "hooks.internal" else host, *args, **kwargs
        )

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    _, key, _ = make_tenant()
    with _api(live_server_url, key) as client:
        response = client.post(
            "/functions/register", json={"name": "probe", "url": "https://hooks.internal/x"}
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "unsafe_url"
    assert error["message"] == (
        "hooks.internal resolves to a non-public address; the operator must allowlist it"
    )
    assert "10.20.30.40" not in response.text


def test_the_schema_describes_what_each_key_sees(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    function, server = components["FunctionOut"], components["McpServerOut"]
    assert {"url", "has_headers", "timeout_s", "created_at"} <= set(function["properties"])
    assert "url" not in function["required"]
    assert {"url", "api_key", "headers"}.isdisjoint(server["required"])
    assert {"last_checked_at", "created_at"} <= set(server["required"])
