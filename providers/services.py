"""Writes of the price table (admin keys only; see `providers.prices_api`); each clears
this process's copy of the table (`providers.prices`)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from llmwrapper.errors import ResourceConflictError
from providers.models import Price
from providers.prices import price_cache_clear


def _save(price: Price) -> Price:
    try:
        with transaction.atomic():
            price.save()
    except IntegrityError as exc:
        raise ResourceConflictError(
            f"A price for model '{price.model}' on "
            f"{repr(price.connection) if price.connection else 'any connection'} "
            "already exists.",
            details={"connection": price.connection or None, "model": price.model},
        ) from exc
    finally:
        price_cache_clear()
    return price


def price_create(**fields: Any) -> Price:
    return _save(Price(**fields))


def price_update(*, price: Price, **fields: Any) -> Price:
    for field, value in fields.items():
        setattr(price, field, value)
    return _save(price)


def price_delete(*, price: Price) -> None:
    price.delete()
    price_cache_clear()
