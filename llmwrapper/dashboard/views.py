"""The usage dashboard's admin page: a period and a subtenant to filter by, the totals,
the charts and the tables."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from llmwrapper.dashboard import charts, queries
from providers.models import LlmCall
from tenants.models import Subtenant

PERIODS = (("1", "today"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"))
DEFAULT_DAYS = 30
MAX_DAYS = 366


def _period(request: HttpRequest) -> tuple[dt.date, dt.date, str]:
    """(start, end, the period's choice): ?days=N, or ?start= and ?end= (YYYY-MM-DD)."""
    today = timezone.now().date()
    try:
        end = dt.date.fromisoformat(request.GET.get("end") or today.isoformat())
        start_text = request.GET.get("start")
        if start_text:
            start = dt.date.fromisoformat(start_text)
            days = ""
        else:
            days = request.GET.get("days") or str(DEFAULT_DAYS)
            start = end - dt.timedelta(days=max(1, min(int(days), MAX_DAYS)) - 1)
    except ValueError:
        end, days = today, str(DEFAULT_DAYS)
        start = end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        start, end = end, start
    start = max(start, end - dt.timedelta(days=MAX_DAYS - 1))
    return start, end, days


def _subtenant(request: HttpRequest) -> Subtenant | None:
    try:
        wanted = uuid.UUID(request.GET.get("subtenant") or "")
    except ValueError:
        return None
    return Subtenant.objects.filter(pk=wanted).first()


def usage_dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("providers.view_llmcall"):
        raise PermissionDenied
    start, end, days = _period(request)
    subtenant = _subtenant(request)
    usage = queries.usage(start=start, end=end, subtenant=subtenant)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Usage dashboard",
        "subtitle": subtenant.name if subtenant else "All subtenants",
        "usage": usage,
        "charts": _charts(usage),
        "periods": PERIODS,
        "days": days,
        "subtenants": queries.subtenant_choices(),
        "selected": str(subtenant.pk) if subtenant else "",
        "calls_url": _calls_url(start, end, subtenant),
    }
    return TemplateResponse(request, "admin/usage_dashboard.html", context)


def _calls_url(start: dt.date, end: dt.date, subtenant: Subtenant | None) -> str:
    """The call records of the period in the admin's list of LLM calls."""
    meta = LlmCall._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    url += f"?created_at__date__gte={start}&created_at__date__lte={end}"
    if subtenant:
        url += f"&subtenant__id__exact={subtenant.pk}"
    return url


Chart = tuple[str, SafeString]  # (the section's heading, the chart's SVG)


def _charts(usage: queries.Usage) -> list[Chart]:
    labels = [f"{day:%b} {day.day}" for day in usage.days]
    rows = [usage.daily.get(day, queries.Row()) for day in usage.days]
    found = [
        _requests_chart(labels, rows),
        _providers_chart(usage, labels),
        _tokens_chart(labels, rows),
    ]
    if usage.with_cost:
        found.append(_cost_chart(labels, rows))
    found.append(_latency_chart(labels, rows))
    return found


def _requests_chart(labels: list[str], rows: list[queries.Row]) -> Chart:
    series = [
        charts.Series("ok", [r.calls - r.errors - r.interrupted for r in rows]),
        charts.Series("error", [r.errors for r in rows], "#dc2626"),
        charts.Series("interrupted", [r.interrupted for r in rows], "#d97706"),
    ]
    chart = charts.stacked_bars("requests", "Requests per day, by outcome", labels, series)
    return "Requests per day", chart


def _providers_chart(usage: queries.Usage, labels: list[str]) -> Chart:
    series = [
        charts.Series(
            provider, [usage.daily_by_provider.get((day, provider), 0) for day in usage.days]
        )
        for provider in usage.providers
    ]
    chart = charts.stacked_bars("providers", "Requests per day, by provider", labels, series)
    return "Requests per day by provider", chart


def _tokens_chart(labels: list[str], rows: list[queries.Row]) -> Chart:
    series = [
        charts.Series("input", [r.input_tokens for r in rows], "#0891b2"),
        charts.Series("output", [r.output_tokens for r in rows], "#7c3aed"),
    ]
    chart = charts.stacked_bars("tokens", "Tokens per day, input and output", labels, series)
    return "Tokens per day", chart


def _cost_chart(labels: list[str], rows: list[queries.Row]) -> Chart:
    series = [charts.Series("cost", [r.cost or 0 for r in rows], "#059669")]
    chart = charts.stacked_bars("cost", "Cost per day in US dollars", labels, series, prefix="$")
    return "Cost per day (USD)", chart


def _latency_chart(labels: list[str], rows: list[queries.Row]) -> Chart:
    colors = ("#2563eb", "#d97706", "#dc2626")
    series = [
        charts.Series(name, [r.p(name) if r.calls else None for r in rows], color)
        for name, color in zip(queries.PERCENTILES, colors, strict=True)
    ]
    chart = charts.lines(
        "latency", "Latency percentiles per day, in milliseconds", labels, series, unit=" ms"
    )
    return "Latency per day (ms)", chart
