"""Usage reports: what a subtenant's calls used, in total and per day, provider and model."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from providers.models import LlmCall
from tenants.models import Subtenant


def usage_report(*, subtenant: Subtenant, start: dt.date, end: dt.date) -> dict[str, Any]:
    """Calls from `start` to `end` inclusive (UTC days)."""
    calls = LlmCall.objects.filter(
        subtenant=subtenant, created_at__date__gte=start, created_at__date__lte=end
    )
    sums = {
        "calls": Count("id"),
        "errors": Count("id", filter=~Q(status=LlmCall.Status.OK)),
        "input_tokens": Sum("input_tokens", default=0),
        "output_tokens": Sum("output_tokens", default=0),
    }
    totals = calls.aggregate(**sums)
    rows = (
        calls.annotate(day=TruncDate("created_at"))
        .values("day", "provider", "model")
        .annotate(**sums)
        .order_by("day", "provider", "model")
    )
    return {
        "subtenant": str(subtenant.pk),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "totals": _with_total(totals),
        "daily": [{**_with_total(row), "day": row["day"].isoformat()} for row in rows],
    }


def _with_total(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "total_tokens": row["input_tokens"] + row["output_tokens"]}
