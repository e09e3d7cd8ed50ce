"""The admin's usage dashboard, from call records: totals, percentiles, charts, filters."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from llmwrapper.dashboard import queries
from providers.models import LlmCall
from tenants.models import Subtenant

pytestmark = pytest.mark.django_db


def call(subtenant, *, days_ago=0, provider="openai", model="gpt-4o-mini", **fields):
    record = LlmCall.objects.create(
        subtenant=subtenant, source="chat", provider=provider, model=model,
        status=fields.pop("status", "ok"), **fields,
    )  # fmt: skip
    moment = timezone.now() - dt.timedelta(days=days_ago)
    LlmCall.objects.filter(pk=record.pk).update(created_at=moment)
    return record


@pytest.fixture
def calls():
    acme = Subtenant.objects.create(name="acme")
    globex = Subtenant.objects.create(name="globex")
    for latency in (100, 200, 300, 400):
        call(acme, latency_ms=latency, input_tokens=10, output_tokens=5)
    call(acme, days_ago=2, provider="anthropic", model="claude-haiku-4-5", latency_ms=1000)
    call(globex, days_ago=1, status="error", latency_ms=50, error_type="provider_error")
    call(globex, days_ago=40, latency_ms=9)  # outside the default 30 days
    return acme, globex


@pytest.fixture
def staff():
    User.objects.create_superuser("root", "root@example.com", "a-long-passphrase")
    browser = Client()
    browser.login(username="root", password="a-long-passphrase")
    return browser


def test_usage_sums_and_exact_percentiles_by_day_model_and_subtenant(calls):
    _, globex = calls
    today = timezone.now().date()
    usage = queries.usage(start=today - dt.timedelta(days=29), end=today)

    assert (usage.total.calls, usage.total.errors, usage.total.tokens) == (6, 1, 60)
    # 50 100 200 300 400 1000: the median between 200 and 300, p95 between 400 and 1000
    assert usage.total.latency == pytest.approx({"p50": 250, "p95": 850, "p99": 970})
    assert usage.daily[today].calls == 4 and usage.daily[today].latency["p50"] == 250
    assert [(r.key, r.calls) for r in usage.by_model] == [
        (("openai", "gpt-4o-mini"), 5),
        (("anthropic", "claude-haiku-4-5"), 1),
    ]
    assert [(name, row.calls, row.errors) for name, row in usage.by_subtenant] == [
        ("acme", 5, 0),
        ("globex", 1, 1),
    ]
    only = queries.usage(start=today - dt.timedelta(days=29), end=today, subtenant=globex)
    assert (only.total.calls, only.by_subtenant) == (1, [])


def test_cost_is_summed_when_call_records_carry_it(calls):
    acme, _ = calls
    if not queries.has_cost():
        pytest.skip("call records have no cost_usd")
    call(acme, cost_usd=Decimal("0.25"))
    call(acme, cost_usd=Decimal("0.5"))
    today = timezone.now().date()
    usage = queries.usage(start=today, end=today, subtenant=acme)
    assert usage.with_cost and usage.total.cost == pytest.approx(0.75)


def test_the_dashboard_page_draws_its_charts_and_filters(calls, staff):
    acme, _ = calls
    page = staff.get("/admin/usage/")
    assert page.status_code == 200
    html = page.content.decode()
    charts = set(re.findall(r'data-chart="(\w+)"', html))
    assert {"requests", "providers", "tokens", "latency"} <= charts
    assert ("cost" in charts) == queries.has_cost()
    assert html.count('class="bar"') >= 4 and 'class="point"' in html
    assert re.search(r'data-total="calls">\s*6<', html)
    assert 'href="/admin/usage/"' in html  # the link in every admin page's header
    assert "<script" not in html.split('id="usage-dashboard"')[1]  # drawn on the server

    filtered = staff.get(f"/admin/usage/?subtenant={acme.pk}&days=7").content.decode()
    assert re.search(r'data-total="calls">\s*5<', filtered)
    assert 'id="by-subtenant"' not in filtered
    assert staff.get("/admin/usage/?days=nonsense&subtenant=x").status_code == 200


def test_the_dashboard_is_for_staff_only(calls):
    assert Client().get("/admin/usage/").status_code == 302  # to the login page
    User.objects.create_user("guest", "guest@example.com", "another-passphrase", is_staff=True)
    guest = Client()
    guest.login(username="guest", password="another-passphrase")
    assert guest.get("/admin/usage/").status_code == 403
