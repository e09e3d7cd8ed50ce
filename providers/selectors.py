"""Reads of the Django side of providers: the price table (admin keys only; see
`providers.prices_api`) and a subtenant's usage reports, from its call records: what
its calls used and cost, in total, per provider and model, and per day, provider and
model."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from llmwrapper.errors import ResourceNotFoundError
from providers.models import LlmCall, Price
from tenants.models import Subtenant


def price_list() -> QuerySet[Price]:
    """Every price: the table is the gateway's, not a tenant's."""
    return Price.objects.all()


def price_access(*, price_id: UUID | str) -> Price:
    """The price of that id; a 404 when there is none."""
    price = Price.objects.filter(pk=price_id).first()
    if price is None:
        raise ResourceNotFoundError("Price not found.", details={"id": str(price_id)})
    return price


_GROUP = ("provider", "model")


def usage_report(*, subtenant: Subtenant, start: dt.date, end: dt.date) -> dict[str, Any]:
    """Calls from `start` to `end` inclusive (UTC days).

    `cost_usd` sums the calls a price matched (a decimal string; null when none did);
    `unpriced_calls` counts the others, so a partial sum is never taken for the whole.
    """
    calls = LlmCall.objects.filter(
        subtenant=subtenant, created_at__date__gte=start, created_at__date__lte=end
    )
    sums = {
        "calls": Count("id"),
        "errors": Count("id", filter=~Q(status=LlmCall.Status.OK)),
        "input_tokens": Sum("input_tokens", default=0),
        "output_tokens": Sum("output_tokens", default=0),
        # Named apart from the field: `unpriced_calls` filters on the field itself.
        "spent": Sum("cost_usd"),
        "unpriced_calls": Count("id", filter=Q(cost_usd__isnull=True)),
    }
    totals = calls.aggregate(**sums)
    models = calls.values(*_GROUP).annotate(**sums).order_by(*_GROUP)
    rows = (
        calls.annotate(day=TruncDate("created_at"))
        .values("day", *_GROUP)
        .annotate(**sums)
        .order_by("day", *_GROUP)
    )
    return {
        "subtenant": str(subtenant.pk),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "totals": _row(totals),
        "by_model": [_row(row) for row in models],
        "daily": [{**_row(row), "day": row["day"].isoformat()} for row in rows],
    }


def _row(row: dict[str, Any]) -> dict[str, Any]:
    sums = dict(row)
    spent = sums.pop("spent")
    return {
        **sums,
        "total_tokens": row["input_tokens"] + row["output_tokens"],
        "cost_usd": usd(spent),
    }


def usd(amount: Decimal | None) -> str | None:
    """Dollars as a decimal string without trailing zeros, e.g. "0.00042"."""
    if amount is None:
        return None
    text = f"{Decimal(amount).normalize():f}"
    return text if text != "-0" else "0"
