"""Plain SQL for the few statements every chat send runs, without the query compiler.

Building a statement through the ORM costs more CPU than running it: reading a chat by
its id took 1 ms on PostgreSQL, of which 0.15 ms was the round trip. The statements
here are one table each, written once per model and set of columns; values go in
through their fields' `get_db_prep_*` and come out through the converters the ORM
applies (JSON, UUIDs and datetimes on SQLite...), so rows read or written here are
exactly what the ORM would read or write. `where` fragments name columns and use `%s`
for values, which `value` prepares. Queries still pass through Django's cursor
wrapper: logging, tracing and the database error classes are the ORM's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, JSONField, Model

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, Any], Any]


def value(model: type[Model], name: str, raw: Any) -> Any:
    """`raw` as the database takes it for the field `name` of `model` (a `%s` value)."""
    return model._meta.get_field(name).get_db_prep_value(raw, connection)  # type: ignore[union-attr]


def instances(model: type[M], where: str, params: Sequence[Any], *, tail: str = "") -> list[M]:
    """Rows of `model`'s table matching `where`, as model instances (every field
    loaded, `tail` appended: ORDER BY, LIMIT)."""
    columns, fields, convert = _reading(model, None, connection.vendor)
    rows = _fetch(model, columns, where, params, tail)
    attnames = [f.attname for f in fields]
    alias = connection.alias
    return [model.from_db(alias, attnames, convert(row)) for row in rows]


def values(
    model: type[Model], names: Sequence[str], where: str, params: Sequence[Any], *, tail: str = ""
) -> list[tuple[Any, ...]]:
    """Rows of `model`'s table matching `where`, as tuples of the fields `names`."""
    columns, _, convert = _reading(model, tuple(names), connection.vendor)
    rows = _fetch(model, columns, where, params, tail)
    return [tuple(convert(row)) for row in rows]


def update(model: type[Model], pk: Any, fields: dict[str, Any]) -> int:
    """Set `fields` (plain values) on the row whose primary key is `pk`; the number of
    rows changed."""
    meta, quote = model._meta, connection.ops.quote_name
    key: Field = meta.pk  # type: ignore[assignment]
    targets: list[Field] = [meta.get_field(name) for name in fields]  # type: ignore[misc]
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in targets)
    params = [f.get_db_prep_save(fields[f.name], connection) for f in targets]
    params.append(key.get_db_prep_value(pk, connection))
    table, where = quote(meta.db_table), f"{quote(key.column)} = %s"
    sql = f"UPDATE {table} SET {assignments} WHERE {where}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def insert(objs: Iterable[M]) -> list[M]:
    """Insert new instances of one model in one statement (their primary keys set by
    their defaults, as `bulk_create` does); `auto_now` fields are filled in."""
    objs = list(objs)
    if not objs:
        return objs
    fields = _writable(type(objs[0]))
    size = max(connection.ops.bulk_batch_size(fields, objs), 1)
    for start in range(0, len(objs), size):
        sql, params = _insert_sql(fields, objs[start : start + size], {})
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    return _stored(objs)


def insert_returning(
    objs: Sequence[M],
    *,
    with_: tuple[str, Sequence[Any]],
    computed: dict[str, str],
    returning: Sequence[str],
) -> list[M]:
    """Insert `objs` in one statement that starts with the WITH clause `with_` (its SQL
    and values) and gives the fields of `computed` an SQL expression instead of their
    value (a `%s` in it takes the instance's value); the fields `returning` are then set
    from what the database stored. Any number of rows the database takes in one
    statement (PostgreSQL: every chat append)."""
    model = type(objs[0])
    sql, params = _insert_sql(_writable(model), objs, computed)
    pk_name: str = model._meta.pk.name  # type: ignore[union-attr]
    columns, _, convert = _reading(model, (pk_name, *returning), connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {with_[0]} {sql} RETURNING {columns}", [*with_[1], *params])
        stored = cursor.fetchall()
    by_pk = {key: row for key, *row in (convert(r) for r in stored)}
    for obj in objs:
        for name, stored_value in zip(returning, by_pk[obj.pk], strict=True):
            setattr(obj, name, stored_value)
    return _stored(list(objs))


def _writable(model: type[Model]) -> list[Field]:
    return [f for f in model._meta.concrete_fields if not f.generated]


def _stored(objs: list[M]) -> list[M]:
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs


def _insert_sql(
    fields: list[Field], objs: Sequence[Model], computed: dict[str, str]
) -> tuple[str, list[Any]]:
    """One INSERT of `objs`; each expression of `computed` holds one `%s`."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    row = "(" + ", ".join(computed.get(f.name, "%s") for f in fields) + ")"
    params: list[Any] = []
    for obj in objs:
        params += [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    table, rows = quote(type(objs[0])._meta.db_table), ", ".join([row] * len(objs))
    return f"INSERT INTO {table} ({columns}) VALUES {rows}", params  # noqa: S608


def _fetch(
    model: type[Model], columns: str, where: str, params: Sequence[Any], tail: str
) -> list[tuple[Any, ...]]:
    table = connection.ops.quote_name(model._meta.db_table)
    sql = f"SELECT {columns} FROM {table} WHERE {where} {tail}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@functools.cache
def _reading(
    model: type[Model], names: tuple[str, ...] | None, vendor: str
) -> tuple[str, list[Field], Callable[[Sequence[Any]], Sequence[Any]]]:
    """The select list, the fields and what turns a row into their values (kept per
    model, columns and database vendor: they depend on nothing else)."""
    meta = model._meta
    chosen = meta.concrete_fields if names is None else [meta.get_field(n) for n in names]
    fields: list[Field] = list(chosen)  # type: ignore[arg-type]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    steps = [
        (index, field, [_quicker(c, field) for c in converters])
        for index, field in enumerate(fields)
        if (
            converters := connection.ops.get_db_converters(field.get_col(meta.db_table))
            + field.get_db_converters(connection)
        )
    ]
    return columns, fields, functools.partial(_converted, steps=steps)


def _converted(
    row: Sequence[Any], *, steps: list[tuple[int, Field, list[Converter]]]
) -> Sequence[Any]:
    """The row with each value that has converters passed through them, as the ORM
    does; a row none of whose columns has one, as it came."""
    if not steps:
        return row
    out = list(row)
    for index, field, converters in steps:
        raw = out[index]
        for converter in converters:
            raw = converter(raw, field, connection)
        out[index] = raw
    return out


# A chat's messages hold mostly empty lists (tool calls, content parts): made, not parsed.
_EMPTY_JSON: dict[str, Callable[[], Any]] = {"[]": list, "{}": dict}


def _quicker(converter: Converter, field: Field) -> Converter:
    """`converter`, or an equivalent that costs less: a JSON field's own (without a
    decoder of its own) makes an empty list or object without parsing it."""
    if not (
        isinstance(field, JSONField)
        and field.decoder is None
        and getattr(converter, "__func__", None) is JSONField.from_db_value
    ):
        return converter

    def from_db_value(value: Any, expression: Any, connection: Any) -> Any:
        if type(value) is str and (empty := _EMPTY_JSON.get(value)) is not None:
            return empty()
        return converter(value, expression, connection)

    return from_db_value
