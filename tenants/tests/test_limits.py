"""Rate limits, token limits and budgets, through the HTTP API."""

import time

import httpx
import pytest
from django.conf import settings as django_settings

from chats.models import Chat
from conftest import client_for
from providers.models import LlmCall
from providers.records import wait_idle
from tenants.models import TokenUsage
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_requests_are_limited_at_exactly_the_configured_count(make_tenant):
    subtenant, _, client = make_tenant("limited", rate_limit_rpm=3)
    url = f"/api/v1/subtenants/{subtenant.id}"
    remaining = []
    for _ in range(3):
        response = client.get(url)
        assert response.status_code == 200
        remaining.append(response["RateLimit-Remaining"])
        assert response["RateLimit-Limit"] == "3" and response["X-RateLimit-Limit"] == "3"
    assert remaining == ["2", "1", "0"]
    refused = client.get(url)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1
    assert refused["RateLimit-Remaining"] == "0"


def test_the_limit_resets_after_the_window(make_tenant, settings):
    settings.RATE_LIMIT_WINDOW_SECONDS = 1
    subtenant, _, client = make_tenant("windowed", rate_limit_rpm=2)
    url = f"/api/v1/subtenants/{subtenant.id}"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(2.1)  # past the current and the previous window
    assert client.get(url).status_code == 200


def test_a_key_limit_applies_to_that_key_only(make_tenant):
    subtenant, _, _ = make_tenant("keys")
    _, slow = api_key_create(name="slow", subtenant=subtenant, rate_limit_rpm=1)
    _, fast = api_key_create(name="fast", subtenant=subtenant)
    url = f"/api/v1/subtenants/{subtenant.id}"
    assert client_for(slow).get(url).status_code == 200
    assert client_for(slow).get(url).status_code == 429
    assert [client_for(fast).get(url).status_code for _ in range(3)] == [200, 200, 200]


def test_service_wide_defaults_apply_when_a_subtenant_sets_none(make_tenant, settings):
    settings.RATE_LIMIT_RPM = 2
    subtenant, _, client = make_tenant("defaults")
    url = f"/api/v1/subtenants/{subtenant.id}"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    unlimited, _, other = make_tenant("unlimited", rate_limit_rpm=0)
    assert all(other.get(f"/api/v1/subtenants/{unlimited.id}").status_code == 200 for _ in range(4))


def ask(client, chat):
    return client.post(f"/api/v1/chats/{chat.id}/messages", {"content": "hi"}, format="json")


def test_tokens_per_minute_are_limited(make_tenant, llm_fakes):
    subtenant, _, client = make_tenant("tpm", rate_limit_tpm=10)
    chat = Chat.objects.create(subtenant=subtenant, provider="openai")
    llm_fakes.openai.enqueue(text="x", usage=(4, 5))  # 9 tokens: under the limit
    llm_fakes.openai.enqueue(text="y", usage=(1, 1))  # reaches 11
    assert ask(client, chat).status_code == 200
    assert ask(client, chat).status_code == 200
    wait_idle()  # tokens are counted as the call records are stored
    refused = ask(client, chat)
    assert refused.status_code == 429
    assert refused.json()["error"]["details"]["unit"] == "tokens"
    assert "Retry-After" in refused
    assert len(llm_fakes.openai.chat_requests()) == 2


def test_budget_exhaustion_refuses_further_calls(make_tenant, llm_fakes):
    subtenant, _, client = make_tenant("budget", token_budget=20)
    chat = Chat.objects.create(subtenant=subtenant, provider="openai")
    llm_fakes.openai.enqueue(text="a", usage=(6, 6)).enqueue(text="b", usage=(5, 5))
    assert ask(client, chat).status_code == 200
    wait_idle()
    direct = client.post(
        "/api/v1/llm/complete",
        {"provider": "openai", "messages": [{"role": "user", "content": "x"}]},
        format="json",
    )
    assert direct.status_code == 200
    wait_idle()  # tokens are counted as the call records are stored
    assert TokenUsage.objects.get(subtenant=subtenant).tokens == 22
    for refused in (
        ask(client, chat),
        client.post(
            "/api/v1/llm/complete",
            {"provider": "openai", "messages": [{"role": "user", "content": "x"}]},
            format="json",
        ),
    ):
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["type"] == "token_budget_exhausted"
        assert error["details"]["budget"] == 20 and error["details"]["used"] == 22
    assert len(llm_fakes.openai.chat_requests()) == 2


def test_usage_report_totals_equal_the_recorded_calls(make_tenant, llm_fakes, admin_client):
    subtenant, _, client = make_tenant("usage")
    chat = Chat.objects.create(subtenant=subtenant, provider="openai")
    llm_fakes.openai.enqueue(text="a", usage=(10, 2))
    llm_fakes.anthropic.enqueue(text="b", usage=(7, 3))
    llm_fakes.openai.enqueue(status=400, error_message="bad")
    ask(client, chat)
    client.post(
        f"/api/v1/chats/{chat.id}/messages",
        {"content": "x", "provider": "anthropic"},
        format="json",
    )
    ask(client, chat)
    wait_idle()  # the report counts stored call records
    report = client.get(f"/api/v1/subtenants/{subtenant.id}/usage").json()
    calls = LlmCall.objects.filter(subtenant=subtenant)
    assert report["totals"]["calls"] == calls.count() == 3
    assert report["totals"]["errors"] == 1
    assert report["totals"]["input_tokens"] == sum(c.input_tokens for c in calls) == 17
    assert report["totals"]["total_tokens"] == 22
    by_provider = {(r["provider"], r["model"]): r for r in report["daily"]}
    assert by_provider[("anthropic", "claude-sonnet-5")]["output_tokens"] == 3
    assert sum(r["calls"] for r in report["daily"]) == 3
    # Another tenant cannot read it; an admin can, and bad ranges are refused.
    _, _, other = make_tenant("nosy")
    assert other.get(f"/api/v1/subtenants/{subtenant.id}/usage").status_code == 404
    assert admin_client.get(f"/api/v1/subtenants/{subtenant.id}/usage").status_code == 200
    bad = client.get(f"/api/v1/subtenants/{subtenant.id}/usage?start=2026-02-01&end=2026-01-01")
    assert bad.status_code == 400


@pytest.mark.redis
def test_two_processes_share_one_limit(make_tenant, app_process):
    if not django_settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: without Redis each process counts alone")
    subtenant, raw, _ = make_tenant("shared", rate_limit_rpm=3)
    urls = [app_process(), app_process()]
    statuses = []
    for i in range(6):
        response = httpx.get(
            f"{urls[i % 2]}/api/v1/subtenants/{subtenant.id}",
            headers={"Authorization": f"Bearer {raw}"},
            timeout=10,
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429, 429, 429]
