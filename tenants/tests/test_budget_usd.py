"""Budgets in dollars per subtenant and per key, through the HTTP API against the fake
vendors: the call that crosses a budget is answered, the next one is refused with 429
`budget_exhausted` and `Retry-After` at the period's end."""

import datetime as dt
import time
from decimal import Decimal

import httpx
import openai
import pytest
from django.conf import settings as django_settings

from conftest import client_for
from providers.models import LlmCall, Price
from providers.prices import price_cache_clear
from providers.records import wait_idle
from tenants.models import KeySpend, TokenUsage
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)

# 100 USD per million input tokens and 200 per million output tokens: (30, 10) tokens
# cost 0.005, (40, 10) cost 0.006.
PRICE = {"model": "gpt-4o-mini", "input": Decimal(100), "output": Decimal(200)}


@pytest.fixture(autouse=True)
def _fresh_price_table():
    """No test prices its calls from another test's table (kept by the process)."""
    price_cache_clear()
    yield
    price_cache_clear()


@pytest.fixture
def priced(db):
    return Price.objects.create(**PRICE)


def complete(client, text: str = "hi"):
    return client.post(
        "/api/v1/llm/complete",
        {"provider": "openai", "messages": [{"role": "user", "content": text}]},
        format="json",
    )


def seconds_to_next_month() -> float:
    now = dt.datetime.now(dt.UTC)
    first = (now.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    end = dt.datetime.combine(first.date(), dt.time(), tzinfo=dt.UTC)
    return (end - now).total_seconds()


def assert_budget_exhausted(response, *, scope: str, budget: str, spent: str, period: float):
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert error["type"] == "budget_exhausted"
    assert error["details"]["scope"] == scope
    assert (error["details"]["budget_usd"], error["details"]["spent_usd"]) == (budget, spent)
    assert abs(int(response["Retry-After"]) - period) <= 5


def test_a_subtenant_budget_runs_out_at_the_call_that_crosses_it(
    make_tenant, llm_fakes, priced, admin_client
):
    subtenant, _, client = make_tenant("budgeted", budget_usd=Decimal("0.01"))
    llm_fakes.openai.enqueue(text="a", usage=(30, 10)).enqueue(text="b", usage=(40, 10))
    assert complete(client).status_code == 200  # 0.005 spent
    wait_idle()  # spend is counted as the call records are stored
    assert complete(client).status_code == 200  # 0.011: this call crosses the budget
    wait_idle()
    assert TokenUsage.objects.get(subtenant=subtenant).cost_usd == Decimal("0.011")
    for refused in (
        complete(client),
        client.post(
            f"/api/v1/chats/{_chat(client, subtenant)}/messages", {"content": "x"}, format="json"
        ),
    ):
        assert_budget_exhausted(
            refused,
            scope="subtenant",
            budget="0.01",
            spent="0.011",
            period=seconds_to_next_month(),
        )
    assert len(llm_fakes.openai.chat_requests()) == 2
    # Raising the budget lets calls through again at once.
    raised = admin_client.put(
        f"/api/v1/subtenants/{subtenant.id}", {"budget_usd": "0.02"}, format="json"
    )
    assert raised.status_code == 200 and raised.json()["budget_usd"] == "0.020000"
    assert complete(client).status_code == 200


def test_a_key_budget_stops_that_key_only(make_tenant, llm_fakes, priced, admin_client):
    subtenant, _, other_key = make_tenant("team")
    created = admin_client.post(
        f"/api/v1/subtenants/{subtenant.id}/keys",
        {"name": "intern", "budget_usd": "0.008", "budget_period": "day"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert (created.json()["budget_usd"], created.json()["budget_period"]) == ("0.008000", "day")
    intern = client_for(created.json()["key"])
    llm_fakes.openai.enqueue(text="a", usage=(30, 10)).enqueue(text="b", usage=(40, 10))
    assert complete(intern).status_code == 200  # 0.005
    wait_idle()
    assert complete(intern).status_code == 200  # 0.011, over 0.008
    wait_idle()
    now = dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    assert_budget_exhausted(
        complete(intern),
        scope="key",
        budget="0.008",
        spent="0.011",
        period=(midnight - now).total_seconds(),
    )
    spend = KeySpend.objects.get(api_key_id=created.json()["id"])
    assert (spend.period_start, spend.cost_usd) == (now.date(), Decimal("0.011"))
    # The subtenant's other key spends on; the subtenant has no budget of its own.
    llm_fakes.openai.enqueue(text="c", usage=(10, 10))
    assert complete(other_key).status_code == 200
    wait_idle()
    assert TokenUsage.objects.get(subtenant=subtenant).cost_usd == Decimal("0.014")
    assert KeySpend.objects.get(api_key__name="team-key").cost_usd == Decimal("0.003")
    listed = admin_client.get(f"/api/v1/subtenants/{subtenant.id}/keys").json()["results"]
    assert {k["name"]: k["budget_usd"] for k in listed} == {"team-key": None, "intern": "0.008000"}


def test_both_budgets_apply_and_the_first_spent_refuses(make_tenant, llm_fakes, priced):
    subtenant, _, _ = make_tenant("both", budget_usd=Decimal("0.009"))
    _, raw = api_key_create(name="big", subtenant=subtenant, budget_usd=Decimal("1"))
    client = client_for(raw)
    llm_fakes.openai.enqueue(text="a", usage=(40, 10)).enqueue(text="b", usage=(40, 10))
    assert complete(client).status_code == 200
    wait_idle()
    assert complete(client).status_code == 200
    wait_idle()
    refused = complete(client)
    assert refused.json()["error"]["details"]["scope"] == "subtenant"
    assert KeySpend.objects.get().cost_usd == TokenUsage.objects.get().cost_usd == Decimal("0.012")


def test_calls_without_a_price_spend_nothing(make_tenant, llm_fakes):
    subtenant, _, client = make_tenant("unpriced", budget_usd=Decimal("0.000001"))
    for _ in range(3):
        llm_fakes.openai.enqueue(text="free", usage=(1000, 1000))
        assert complete(client).status_code == 200
        wait_idle()
    assert LlmCall.objects.filter(subtenant=subtenant, cost_usd__isnull=True).count() == 3
    assert TokenUsage.objects.get(subtenant=subtenant).cost_usd == 0


def test_an_exhausted_budget_is_insufficient_quota_for_openai_clients(
    make_tenant, llm_fakes, priced, live_server_url
):
    _, raw, _ = make_tenant("sdk", budget_usd=Decimal("0.001"))
    sdk = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=raw, max_retries=0)
    llm_fakes.openai.enqueue(text="a", usage=(30, 10))
    messages = [{"role": "user", "content": "hi"}]
    sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
    wait_idle()
    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
    assert raised.value.code == "insufficient_quota"
    assert int(raised.value.response.headers["Retry-After"]) >= 1


def test_budgets_are_validated_and_shown(admin_client, make_tenant):
    subtenant, _, own = make_tenant("shown")
    url = f"/api/v1/subtenants/{subtenant.id}"
    for bad in ("-1", "abc", "0.0000001", "1e12"):
        response = admin_client.put(url, {"budget_usd": bad}, format="json")
        assert response.status_code == 400, bad
        assert list(response.json()["error"]["details"]) == ["budget_usd"]
    assert admin_client.put(url, {"budget_usd": 5}, format="json").json()["budget_usd"] == (
        "5.000000"
    )
    assert own.get(url).json()["budget_usd"] == "5.000000"
    assert own.put(url, {"budget_usd": None}, format="json").status_code == 403
    assert admin_client.put(url, {"budget_usd": None}, format="json").json()["budget_usd"] is None
    bad_key = admin_client.post(
        f"{url}/keys", {"name": "k", "budget_usd": "-0.5", "budget_period": "year"}, format="json"
    )
    assert bad_key.status_code == 400
    assert sorted(bad_key.json()["error"]["details"]) == ["budget_period", "budget_usd"]


@pytest.mark.redis
def test_two_processes_share_one_dollar_budget(make_tenant, app_process, llm_fakes, priced):
    if not django_settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: the PostgreSQL + Redis configuration")
    subtenant, raw, _ = make_tenant("shared", budget_usd=Decimal("0.01"))
    env = {
        "OPENAI_BASE_URL": llm_fakes.openai.base_url,
        "OPENAI_API_KEY": "sk-test-openai",
        "DEFAULT_LLM_PROVIDER": "openai",
        "PROVIDER_MAX_RETRIES": "0",
    }
    urls = [app_process(**env), app_process(**env)]
    for _ in range(4):
        llm_fakes.openai.enqueue(text="a", usage=(30, 10))  # 0.005 each
    statuses = []
    for i in range(4):
        response = httpx.post(
            f"{urls[i % 2]}/api/v1/llm/complete",
            json={"provider": "openai", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {raw}"},
            timeout=30,
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["error"]["type"] == "budget_exhausted"
            assert int(response.headers["Retry-After"]) >= 1
        _wait_for_records(subtenant, statuses.count(200))
    # 0.005, then 0.010 (reaching the budget): the third call, in either process, is refused.
    assert statuses == [200, 200, 429, 429]
    assert TokenUsage.objects.get(subtenant=subtenant).cost_usd == Decimal("0.01")
    assert len(llm_fakes.openai.chat_requests()) == 2


def _wait_for_records(subtenant, count: int) -> None:
    """Another process's call records are stored in its background; wait for them."""
    deadline = time.monotonic() + 10
    while LlmCall.objects.filter(subtenant=subtenant).count() < count:
        assert time.monotonic() < deadline, "the call records were not stored"
        time.sleep(0.05)


def _chat(client, subtenant) -> str:
    response = client.post(
        f"/api/v1/subtenants/{subtenant.id}/chats", {"provider": "openai"}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_the_admin_sets_budgets_and_lists_what_was_spent(client, make_tenant):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    subtenant, _, _ = make_tenant("admin-set")
    added = client.post(
        "/admin/tenants/apikey/add/",
        {"name": "capped", "subtenant": subtenant.pk, "budget_usd": "2.5", "budget_period": "day"},
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    key = subtenant.api_keys.get(name="capped")
    assert (key.budget_usd, key.budget_period) == (Decimal("2.5"), "day")
    KeySpend.objects.create(api_key=key, period_start=dt.date.today(), cost_usd=Decimal("1.25"))
    assert "1.25" in client.get("/admin/tenants/keyspend/").content.decode()
    assert (
        "budget_usd"
        in client.get(f"/admin/tenants/subtenant/{subtenant.pk}/change/").content.decode()
    )
