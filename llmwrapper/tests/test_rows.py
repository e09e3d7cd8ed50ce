"""`llmwrapper.rows` reads and writes exactly what the ORM would, on SQLite and on
PostgreSQL: UUIDs, JSON, datetimes, nulls and foreign keys included."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from chats.models import Chat, Message
from llmwrapper import rows
from tenants.models import Subtenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat():
    subtenant = Subtenant.objects.create(name="rows")
    return Chat.objects.create(
        subtenant=subtenant, title="t", params={"temperature": 0.5}, metadata={"a": [1, "é"]}
    )


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_instances_are_the_orms(chat):
    (found,) = rows.instances(
        Chat,
        '"id" = %s AND "subtenant_id" = %s',
        [rows.value(Chat, "id", str(chat.pk)), rows.value(Chat, "subtenant", chat.subtenant_id)],
    )
    assert _fields(found) == _fields(Chat.objects.get(pk=chat.pk))
    assert found._state.adding is False and found._state.db == connection.alias
    assert rows.instances(Chat, '"id" = %s', [rows.value(Chat, "id", Subtenant().pk)]) == []


def test_inserted_rows_read_back_through_the_orm(chat):
    lease = timezone.now() + dt.timedelta(seconds=30)
    written = rows.insert(
        [
            Message(chat=chat, sequence=1, role="user", content="hi\u2028", parts=[{"t": 1}]),
            Message(
                chat=chat,
                sequence=2,
                role="assistant",
                status="streaming",
                tool_calls=[{"id": "c", "name": "f", "arguments": {"x": None}}],
                input_tokens=None,
                lease_expires_at=lease,
            ),
        ]
    )
    assert all(m.created_at and m.updated_at and not m._state.adding for m in written)
    for message in written:
        assert _fields(Message.objects.get(pk=message.pk)) == _fields(message)


def test_values_decode_like_values_list(chat):
    rows.insert(
        Message(chat=chat, sequence=i, role="user", content=str(i), tool_calls=[{"n": i}])
        for i in range(1, 6)
    )
    names = ("sequence", "content", "tool_calls", "created_at", "id")
    found = rows.values(
        Message,
        names,
        '"chat_id" = %s AND "sequence" < %s',
        [rows.value(Message, "chat", chat.pk), 5],
        tail='ORDER BY "sequence" DESC LIMIT 3',
    )
    expected = Message.objects.filter(chat=chat, sequence__lt=5).order_by("-sequence")[:3]
    assert found == list(expected.values_list(*names))


def test_empty_json_values_come_back_new_each_time(chat):
    # Empty lists and objects are made without parsing: equal to the ORM's, never shared.
    rows.insert(
        Message(chat=chat, sequence=i, role="user", tool_calls=[], metadata=meta, parts=parts)
        for i, (meta, parts) in enumerate([({}, []), ({"k": []}, ["[]"]), ({}, [{}])], start=1)
    )
    names = ("tool_calls", "metadata", "parts")
    where, params = '"chat_id" = %s', [rows.value(Message, "chat", chat.pk)]
    found = rows.values(Message, names, where, params, tail='ORDER BY "sequence"')
    expected = Message.objects.filter(chat=chat).order_by("sequence").values_list(*names)
    assert found == list(expected)
    found[0][0].append("changed")
    found[0][1]["changed"] = True
    again = rows.values(Message, names, where, params, tail='ORDER BY "sequence"')
    assert again[0] == ([], {}, [])


def test_update_sets_plain_values_on_one_row(chat):
    first, second = rows.insert(
        Message(chat=chat, sequence=i, role="assistant", status="streaming") for i in (1, 2)
    )
    changed = rows.update(
        Message,
        first.pk,
        {"content": "done", "status": "complete", "metadata": {"k": [True]}, "latency_ms": 7},
    )
    assert changed == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.content, first.status, first.metadata, first.latency_ms) == (
        "done",
        "complete",
        {"k": [True]},
        7,
    )
    assert (second.content, second.status) == ("", "streaming")


def test_a_large_insert_is_split_into_statements_the_database_takes(chat):
    many = rows.insert(
        Message(chat=chat, sequence=i, role="user", content=str(i)) for i in range(1, 3001)
    )
    assert len(many) == 3000
    assert Message.objects.filter(chat=chat).count() == 3000


def test_insert_returning_numbers_rows_from_its_with_clause(chat):
    objs = [Message(chat=chat, sequence=i, role="user", content=str(i)) for i in (1, 2, 3)]
    written = rows.insert_returning(
        objs,
        with_=("base AS (SELECT %s AS start)", [40]),
        computed={"sequence": "(SELECT start FROM base) + %s"},
        returning=("sequence", "created_at"),
    )
    assert [m.sequence for m in written] == [41, 42, 43]
    for message in written:
        assert _fields(Message.objects.get(pk=message.pk)) == _fields(message)
