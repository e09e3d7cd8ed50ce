"""What the usage dashboard shows, read from the call records (`LlmCall`).

Sums and counts are grouped in the database. Latency percentiles are exact: computed
by PostgreSQL (`percentile_cont`) in the same grouped queries; on SQLite, which has no
such aggregate, from the latencies of the period read in one query.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from providers.models import LlmCall
from tenants.models import Subtenant

PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def has_cost() -> bool:
    """Whether call records carry their cost (the price table's `cost_usd`)."""
    return any(f.name == "cost_usd" for f in LlmCall._meta.get_fields())


class _Percentile(Aggregate):
    """PostgreSQL's ordered-set aggregate: percentile_cont(f) WITHIN GROUP (ORDER BY x)."""

    function = "PERCENTILE_CONT"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float) -> None:
        # A constant of ours, never user input: rendered into the SQL as a literal.
        self.template = f"%(function)s({float(fraction)!r}) WITHIN GROUP (ORDER BY %(expressions)s)"
        super().__init__(expression)


@dataclass
class Row:
    """One group's usage: calls, errors, tokens, cost, latency percentiles."""

    key: tuple = ()
    calls: int = 0
    errors: int = 0
    interrupted: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    latency: dict[str, float | None] = field(default_factory=dict)  # by "p50", "p95"...

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    def p(self, name: str) -> float | None:
        return self.latency.get(name)


@dataclass
class Usage:
    start: dt.date
    end: dt.date
    subtenant: Subtenant | None
    with_cost: bool
    total: Row
    days: list[dt.date]
    daily: dict[dt.date, Row]
    daily_by_provider: dict[tuple[dt.date, str], int]
    providers: list[str]
    by_model: list[Row]
    by_subtenant: list[tuple[str, Row]]


def usage(*, start: dt.date, end: dt.date, subtenant: Subtenant | None = None) -> Usage:
    """The calls from `start` to `end` inclusive (UTC days), of one subtenant or all."""
    since = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    calls = LlmCall.objects.filter(created_at__gte=since, created_at__lt=until)
    if subtenant is not None:
        calls = calls.filter(subtenant=subtenant)
    calls = calls.annotate(day=TruncDate("created_at"))
    with_cost = has_cost()
    total = _rows(calls, (), with_cost)[()]
    daily = _rows(calls, ("day",), with_cost)
    by_model = _rows(calls, ("provider", "model"), with_cost)
    by_provider = {
        (row["day"], row["provider"]): row["n"]
        for row in calls.values("day", "provider").annotate(n=Count("id")).order_by()
    }
    by_subtenant: list[tuple[str, Row]] = []
    if subtenant is None:
        rows = _rows(calls, ("subtenant_id",), with_cost)
        names = dict(
            Subtenant.objects.filter(pk__in=[k[0] for k in rows]).values_list("pk", "name")
        )
        by_subtenant = sorted(
            ((names.get(k[0], str(k[0])), row) for k, row in rows.items()),
            key=lambda item: -item[1].calls,
        )
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return Usage(
        start=start,
        end=end,
        subtenant=subtenant,
        with_cost=with_cost,
        total=total,
        days=days,
        daily={k[0]: row for k, row in daily.items()},
        daily_by_provider=by_provider,
        providers=sorted({p for _, p in by_provider}),
        by_model=sorted(by_model.values(), key=lambda row: -row.calls),
        by_subtenant=by_subtenant,
    )


def _sums(with_cost: bool) -> dict[str, Any]:
    sums: dict[str, Any] = {
        "calls": Count("id"),
        "errors": Count("id", filter=Q(status=LlmCall.Status.ERROR)),
        "interrupted": Count("id", filter=Q(status=LlmCall.Status.INTERRUPTED)),
        "input_tokens": Sum("input_tokens", default=0),
        "output_tokens": Sum("output_tokens", default=0),
    }
    if with_cost:
        sums["cost"] = Sum("cost_usd")
    if connection.vendor == "postgresql":
        sums.update({name: _Percentile("latency_ms", f) for name, f in PERCENTILES.items()})
    return sums


def _rows(calls: QuerySet, group: tuple[str, ...], with_cost: bool) -> dict[tuple, Row]:
    grouped = calls.values(*group) if group else calls
    sums = _sums(with_cost)
    found = grouped.annotate(**sums).order_by() if group else [calls.aggregate(**sums)]
    rows: dict[tuple, Row] = {}
    for values in found:
        key = tuple(values[g] for g in group)
        cost = values.get("cost")
        rows[key] = Row(
            key=key,
            calls=values["calls"],
            errors=values["errors"],
            interrupted=values["interrupted"],
            input_tokens=values["input_tokens"],
            output_tokens=values["output_tokens"],
            cost=float(cost) if cost is not None else (0.0 if with_cost else None),
            latency={name: values.get(name) for name in PERCENTILES},
        )
    if not group and not rows[()].calls:
        rows[()].latency = dict.fromkeys(PERCENTILES)
    if connection.vendor != "postgresql":
        for key, latency in _percentiles_in_python(calls, group).items():
            if key in rows:
                rows[key].latency = latency
    return rows


def _percentiles_in_python(
    calls: QuerySet, group: tuple[str, ...]
) -> dict[tuple, dict[str, float | None]]:
    values: dict[tuple, list[int]] = defaultdict(list)
    for *key, latency in calls.values_list(*group, "latency_ms").order_by():
        values[tuple(key)].append(latency)
    return {
        key: {name: percentile(sorted(v), f) for name, f in PERCENTILES.items()}
        for key, v in values.items()
    }


def percentile(ordered: list[int], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks, as percentile_cont does."""
    if not ordered:
        return None
    rank = fraction * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def subtenant_choices(limit: int = 500) -> list[tuple[uuid.UUID, str]]:
    return list(Subtenant.objects.order_by("name").values_list("pk", "name")[:limit])
