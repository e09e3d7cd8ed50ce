"""The price table (`/api/v1/prices`), which price applies to a call, and the cost of
each call in its record and in usage reports, through HTTP against the fake vendors."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from providers.models import LlmCall, Price
from providers.prices import PriceTable, call_cost, price_cache_clear, price_table
from providers.records import wait_idle

PRICES = "/api/v1/prices"


@pytest.fixture(autouse=True)
def _fresh_price_table():
    """No test prices its calls from another test's table (kept by the process)."""
    price_cache_clear()
    yield
    price_cache_clear()


def price(model: str, connection: str = "", input: str = "1", output: str = "2") -> Price:
    return Price(connection=connection, model=model, input=Decimal(input), output=Decimal(output))


def test_the_most_specific_price_wins():
    table = PriceTable(
        [
            price("*", input="9"),
            price("gpt-4o*", input="8"),
            price("gpt-4o-mini*", input="7"),
            price("gpt-4o-mini", input="6"),
            price("gpt*", "openai", input="5"),
            price("gpt-4o-mini*", "openai", input="4"),
            price("gpt-4o-mini", "openai", input="3"),
        ]
    )

    def input_price(provider: str, model: str) -> str | None:
        found = table.match(provider=provider, model=model)
        return None if found is None else str(found.input)

    # The call's connection and its exact model, then its longest prefix...
    assert input_price("openai", "gpt-4o-mini") == "3"
    assert input_price("openai", "gpt-4o-mini-2024-07-18") == "4"
    assert input_price("openai", "gpt-4o") == "5"
    # ...then any connection: the exact model, then the longest prefix.
    assert input_price("private", "gpt-4o-mini") == "6"
    assert input_price("private", "gpt-4o-mini-2024-07-18") == "7"
    assert input_price("private", "gpt-4o") == "8"
    assert input_price("local", "llama3.2") == "9"
    # A connection's prefix beats another connection's exact price, and an exact price
    # of the connection is not a prefix of longer names.
    assert input_price("openai", "gpt-4o-mini-x") == "4"
    assert (
        PriceTable([price("gpt-4o", "openai")]).match(provider="openai", model="gpt-4o-x") is None
    )
    assert PriceTable([]).match(provider="openai", model="gpt-4o") is None


def test_a_call_costs_its_tokens_at_the_prices_per_million():
    gpt = Price(model="gpt-4o", input=Decimal("2.5"), output=Decimal("10"))
    assert call_cost(gpt, input_tokens=1000, output_tokens=500) == Decimal("0.0075")
    # Cached input tokens cost the input price unless the table says otherwise.
    assert call_cost(gpt, input_tokens=1000, output_tokens=0, cached_input_tokens=400) == Decimal(
        "0.0025"
    )
    gpt.cached_input = Decimal("1.25")
    assert call_cost(gpt, input_tokens=1000, output_tokens=0, cached_input_tokens=400) == Decimal(
        "0.002"
    )


@pytest.mark.django_db(transaction=True)
class TestPricesApi:
    def test_admin_creates_reads_updates_lists_and_deletes_prices(self, admin_client):
        created = admin_client.post(
            PRICES,
            {"connection": "openai", "model": "gpt-4o*", "input": "2.5", "output": 10},
            format="json",
        )
        assert created.status_code == 201, created.content
        body = created.json()
        assert body["connection"] == "openai" and body["model"] == "gpt-4o*"
        assert (body["input"], body["output"], body["cached_input"]) == (
            "2.500000",
            "10.000000",
            None,
        )
        any_connection = admin_client.post(
            PRICES, {"model": "llama3.2", "input": "0", "output": "0"}, format="json"
        )
        assert any_connection.status_code == 201
        assert any_connection.json()["connection"] is None

        url = f"{PRICES}/{body['id']}"
        assert admin_client.get(url).json() == body
        changed = admin_client.put(url, {"cached_input": "1.25"}, format="json")
        assert changed.status_code == 200
        assert changed.json()["cached_input"] == "1.250000"
        assert changed.json()["input"] == "2.500000"
        # What a GET answered can be PUT back.
        assert admin_client.put(url, changed.json(), format="json").status_code == 200

        listed = admin_client.get(PRICES).json()
        assert listed["count"] == 2 and {"next", "previous"} <= set(listed)
        assert [p["model"] for p in listed["results"]] == ["llama3.2", "gpt-4o*"]
        assert admin_client.get(f"{PRICES}?limit=1").json()["next"]

        assert admin_client.delete(url).status_code == 204
        assert admin_client.get(url).status_code == 404
        assert admin_client.delete(url).status_code == 404
        assert Price.objects.count() == 1

    def test_subtenant_keys_and_anonymous_callers_cannot_use_the_price_table(
        self, make_tenant, admin_client
    ):
        existing = admin_client.post(
            PRICES, {"model": "gpt-4o", "input": "1", "output": "1"}, format="json"
        ).json()
        _, _, client = make_tenant("customer")
        url = f"{PRICES}/{existing['id']}"
        for response in (
            client.get(PRICES),
            client.post(PRICES, {"model": "x", "input": "0", "output": "0"}, format="json"),
            client.get(url),
            client.put(url, {"input": "0"}, format="json"),
            client.delete(url),
        ):
            assert response.status_code == 403
            assert response.json()["error"]["type"] == "permission_denied"
        from conftest import client_for

        assert client_for(None).get(PRICES).status_code == 401
        assert Price.objects.get().input == Decimal("1")

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"input": "1", "output": "1"}, "model"),
            ({"model": "", "input": "1", "output": "1"}, "model"),
            ({"model": "gpt-*4o", "input": "1", "output": "1"}, "model"),
            ({"model": "gpt 4o", "input": "1", "output": "1"}, "model"),
            ({"model": "m" * 201, "input": "1", "output": "1"}, "model"),
            ({"model": "gpt-4o", "output": "1"}, "input"),
            ({"model": "gpt-4o", "input": "-1", "output": "1"}, "input"),
            ({"model": "gpt-4o", "input": "abc", "output": "1"}, "input"),
            ({"model": "gpt-4o", "input": "0.0000001", "output": "1"}, "input"),
            ({"model": "gpt-4o", "input": "1", "output": "1e9"}, "output"),
            ({"model": "gpt-4o", "input": "1", "output": "1", "cached_input": -2}, "cached_input"),
            ({"model": "gpt-4o", "input": "1", "output": "1", "connection": "a/b"}, "connection"),
            ({"model": "gpt-4o", "input": "1", "output": "1", "connection": "*"}, "connection"),
            (
                {"model": "gpt-4o", "input": "1", "output": "1", "connection": "x" * 33},
                "connection",
            ),
            ({"model": "gpt-4o", "input": "1", "output": "1", "currency": "EUR"}, "currency"),
        ],
    )
    def test_invalid_prices_are_400_naming_the_field(self, admin_client, body, field):
        response = admin_client.post(PRICES, body, format="json")
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["type"] == "validation_error"
        assert list(error["details"]) == [field]
        assert not Price.objects.exists()

    def test_one_price_per_connection_and_model(self, admin_client):
        first = {"connection": "openai", "model": "gpt-4o", "input": "1", "output": "1"}
        assert admin_client.post(PRICES, first, format="json").status_code == 201
        again = admin_client.post(PRICES, {**first, "input": "2"}, format="json")
        assert again.status_code == 409
        assert again.json()["error"]["type"] == "conflict"
        assert again.json()["error"]["details"] == {"connection": "openai", "model": "gpt-4o"}
        # No connection and an empty one are the same: any connection.
        anywhere = {"model": "gpt-4o", "input": "1", "output": "1"}
        assert admin_client.post(PRICES, anywhere, format="json").status_code == 201
        duplicate = admin_client.post(PRICES, {**anywhere, "connection": ""}, format="json")
        assert duplicate.status_code == 409
        # Renaming onto an existing price is a conflict too, and changes nothing.
        other = admin_client.post(
            PRICES,
            {"connection": "private", "model": "gpt-4o", "input": "1", "output": "1"},
            format="json",
        ).json()
        moved = admin_client.put(f"{PRICES}/{other['id']}", {"connection": "openai"}, format="json")
        assert moved.status_code == 409
        assert Price.objects.filter(connection="private").exists()

    def test_listing_prices_takes_the_same_queries_for_more_rows(self, admin_client):
        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                assert admin_client.get(PRICES).status_code == 200
            return len(captured)

        Price.objects.create(model="a", input=1, output=1)
        queries()  # the key is looked up once, then remembered
        few = queries()
        Price.objects.bulk_create(Price(model=f"m{i}", input=1, output=1) for i in range(30))
        assert queries() == few


def complete(client, provider: str, model: str = "", **extra):
    body = {"provider": provider, "messages": [{"role": "user", "content": "hi"}], **extra}
    if model:
        body["model"] = model
    response = client.post("/api/v1/llm/complete", body, format="json")
    assert response.status_code == 200, response.content
    return response


@pytest.mark.django_db(transaction=True)
def test_calls_are_recorded_with_their_cost_and_reports_sum_it(
    make_tenant, admin_client, llm_fakes, settings
):
    settings.PRICE_CACHE_SECONDS = 60  # changes through the API apply at once anyway
    subtenant, _, client = make_tenant("billed")
    for row in (
        {"model": "gpt-4o*", "input": "2.5", "output": "10"},
        {"connection": "openai", "model": "gpt-4o-mini", "input": "0.15", "output": "0.6"},
        {"connection": "anthropic", "model": "claude-*", "input": "3", "output": "15"},
    ):
        assert admin_client.post(PRICES, row, format="json").status_code == 201
    llm_fakes.openai.enqueue(text="a", usage=(1000, 500))  # gpt-4o-mini, the default
    llm_fakes.openai.enqueue(text="b", usage=(2000, 100))
    llm_fakes.anthropic.enqueue(text="c", usage=(100, 20))
    llm_fakes.local.enqueue(text="d", usage=(50, 50))  # no price for llama3.2
    complete(client, "openai")
    complete(client, "openai", "gpt-4o-2024-08-06")
    complete(client, "anthropic")
    complete(client, "local")
    wait_idle()

    costs = {(c.provider, c.model): c.cost_usd for c in LlmCall.objects.filter(subtenant=subtenant)}
    assert costs == {
        ("openai", "gpt-4o-mini"): Decimal("0.00045"),  # 1000 * 0.15 + 500 * 0.6 per million
        ("openai", "gpt-4o-2024-08-06"): Decimal("0.006"),  # 2000 * 2.5 + 100 * 10
        ("anthropic", "claude-sonnet-5"): Decimal("0.0006"),  # 100 * 3 + 20 * 15
        ("local", "llama3.2"): None,
    }

    report = client.get(f"/api/v1/subtenants/{subtenant.id}/usage").json()
    assert report["totals"]["cost_usd"] == "0.00705"
    assert report["totals"]["unpriced_calls"] == 1 and report["totals"]["calls"] == 4
    by_model = {(r["provider"], r["model"]): r for r in report["by_model"]}
    assert by_model[("openai", "gpt-4o-mini")]["cost_usd"] == "0.00045"
    assert by_model[("openai", "gpt-4o-mini")]["total_tokens"] == 1500
    assert by_model[("local", "llama3.2")]["cost_usd"] is None
    assert by_model[("local", "llama3.2")]["unpriced_calls"] == 1
    daily = {(r["day"], r["provider"], r["model"]): r["cost_usd"] for r in report["daily"]}
    today = report["end"]
    assert daily[(today, "anthropic", "claude-sonnet-5")] == "0.0006"
    assert sum(Decimal(r["cost_usd"] or 0) for r in report["daily"]) == Decimal("0.00705")

    # A changed price applies to the next call in this process, not to stored ones.
    mini = Price.objects.get(connection="openai", model="gpt-4o-mini")
    assert (
        admin_client.put(f"{PRICES}/{mini.id}", {"input": "1", "output": "1"}, format="json")
    ).status_code == 200
    llm_fakes.openai.enqueue(text="e", usage=(1000, 1000))
    complete(client, "openai")
    wait_idle()
    latest = LlmCall.objects.filter(subtenant=subtenant, model="gpt-4o-mini").order_by(
        "-created_at"
    )
    assert [c.cost_usd for c in latest] == [Decimal("0.002"), Decimal("0.00045")]


@pytest.mark.django_db(transaction=True)
def test_a_price_for_a_connection_applies_to_its_calls_only(make_tenant, admin_client, llm_fakes):
    subtenant, _, client = make_tenant("two-clouds")
    admin_client.post(
        PRICES, {"connection": "private", "model": "*", "input": "1", "output": "1"}, format="json"
    )
    llm_fakes.private.enqueue(text="a", usage=(10, 10))
    llm_fakes.local.enqueue(text="b", usage=(10, 10))
    complete(client, "private")
    complete(client, "local")
    wait_idle()
    costs = dict(LlmCall.objects.filter(subtenant=subtenant).values_list("provider", "cost_usd"))
    assert costs == {"private": Decimal("0.00002"), "local": None}
    # A failed call with a price costs nothing; one without stays unpriced.
    llm_fakes.private.enqueue(status=400, error_message="bad")
    bad = client.post(
        "/api/v1/llm/complete",
        {"provider": "private", "messages": [{"role": "user", "content": "x"}]},
        format="json",
    )
    assert bad.status_code >= 400
    wait_idle()
    failed = LlmCall.objects.get(subtenant=subtenant, status="error")
    assert failed.cost_usd == Decimal(0)


@pytest.mark.django_db
def test_the_admin_screen_edits_prices_and_they_apply_at_once(client, settings):
    from django.contrib.auth.models import User

    settings.PRICE_CACHE_SECONDS = 60
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    form = {"connection": "openai", "model": "gpt-4o*", "input": "2.5", "output": "10"}
    added = client.post("/admin/providers/price/add/", {**form, "cached_input": ""})
    assert added.status_code == 302, added.content.decode()[:2000]
    priced = price_table().match(provider="openai", model="gpt-4o-2024-08-06")
    assert priced is not None and priced.cached_input is None
    # The same rules as the API: one price per connection and model, '*' only at the end.
    duplicate = client.post("/admin/providers/price/add/", form)
    assert duplicate.status_code == 200 and Price.objects.count() == 1
    wildcard = client.post("/admin/providers/price/add/", {**form, "model": "gpt-*o"})
    assert wildcard.status_code == 200 and Price.objects.count() == 1
    row = Price.objects.get()
    changed = client.post(
        f"/admin/providers/price/{row.pk}/change/", {**form, "input": "1", "cached_input": ""}
    )
    assert changed.status_code == 302
    assert price_table().match(provider="openai", model="gpt-4o").input == Decimal(1)
    assert "gpt-4o*" in client.get("/admin/providers/price/").content.decode()
    client.post(f"/admin/providers/price/{row.pk}/delete/", {"post": "yes"})
    assert price_table().match(provider="openai", model="gpt-4o") is None
