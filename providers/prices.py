"""The price table: which price applies to a call, and what the call cost.

A price names a model exactly or by a prefix ending in `*`, for one connection (a
call's `provider`) or for any. The most specific match wins:

1. the call's connection and its exact model,
2. the call's connection and the longest matching prefix,
3. any connection and the exact model,
4. any connection and the longest matching prefix.

Costs are computed as call records are stored (`providers.records`, off the request
path), from a copy of the table each process keeps for PRICE_CACHE_SECONDS: a change
made in this process applies at once, other processes see it within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings

from providers import selectors
from providers.models import Price

MILLION = Decimal(1_000_000)


class PriceTable:
    """The prices in a form that answers `match` without a query."""

    def __init__(self, prices: Iterable[Price]) -> None:
        self._exact: dict[tuple[str, str], Price] = {}
        prefixes: dict[str, list[tuple[str, Price]]] = {}
        for price in prices:
            if price.model.endswith("*"):
                prefixes.setdefault(price.connection, []).append((price.model[:-1], price))
            else:
                self._exact[(price.connection, price.model)] = price
        # Longest prefix first: the first that matches is the most specific.
        self._prefixes = {
            connection: sorted(rows, key=lambda row: len(row[0]), reverse=True)
            for connection, rows in prefixes.items()
        }

    def match(self, *, provider: str, model: str) -> Price | None:
        for connection in (provider, ""):
            exact = self._exact.get((connection, model))
            if exact is not None:
                return exact
            for prefix, price in self._prefixes.get(connection, ()):
                if model.startswith(prefix):
                    return price
        return None


def call_cost(
    price: Price, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
) -> Decimal:
    """The cost in US dollars of a call's tokens; `cached_input_tokens` are part of
    `input_tokens`, billed at the cached price."""
    cached = min(max(cached_input_tokens, 0), input_tokens)
    cached_price = price.input if price.cached_input is None else price.cached_input
    total = (
        (input_tokens - cached) * price.input + cached * cached_price + output_tokens * price.output
    )
    return total / MILLION


class _Cache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: PriceTable | None = None
        self._expires = 0.0
        # Raised by every clear: a table read before a change is not kept after it.
        self._generation = 0

    def table(self) -> PriceTable:
        table, now = self._table, time.monotonic()
        if table is not None and self._expires > now:
            return table
        generation = self._generation
        table = PriceTable(selectors.price_list())
        ttl = settings.PRICE_CACHE_SECONDS
        with self._lock:
            if ttl > 0 and generation == self._generation:
                self._table, self._expires = table, now + ttl
        return table

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._table, self._expires = None, 0.0


_cache = _Cache()


def price_table() -> PriceTable:
    return _cache.table()


def price_cache_clear() -> None:
    _cache.clear()


def price_calls(records: Iterable[Any]) -> None:
    """Set `cost_usd` on call records (`LlmCall`s) that have none, from the table."""
    table = None
    for record in records:
        if record.cost_usd is not None:
            continue
        table = table or price_table()
        price = table.match(provider=record.provider, model=record.model)
        if price is not None:
            record.cost_usd = call_cost(
                price, input_tokens=record.input_tokens, output_tokens=record.output_tokens
            )
