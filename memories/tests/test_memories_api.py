import threading

import pytest
from django.db import connection, connections

from conftest import client_for
from memories.models import Memory

pytestmark = pytest.mark.django_db


def url(subtenant, key=""):
    base = f"/api/v1/subtenants/{subtenant.id}/memories"
    return f"{base}/{key}" if key else base


def test_memory_crud_by_key(make_tenant):
    subtenant, _, client = make_tenant()
    created = client.post(
        url(subtenant),
        {"key": "user.name", "value": {"first": "Ada"}, "description": "Preferred name"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["value"] == {"first": "Ada"}

    assert client.get(url(subtenant, "user.name")).json()["description"] == "Preferred name"

    updated = client.put(url(subtenant, "user.name"), {"value": ["any", 1, True]}, format="json")
    assert updated.status_code == 200
    assert updated.json()["value"] == ["any", 1, True]
    assert updated.json()["description"] == "Preferred name"

    client.post(url(subtenant), {"key": "a", "value": 1}, format="json")
    listed = client.get(url(subtenant)).json()
    assert [m["key"] for m in listed["results"]] == ["a", "user.name"]

    assert client.delete(url(subtenant, "user.name")).status_code == 204
    assert client.get(url(subtenant, "user.name")).status_code == 404


def test_creating_an_existing_key_is_409(make_tenant):
    subtenant, _, client = make_tenant()
    client.post(url(subtenant), {"key": "k", "value": 1}, format="json")
    response = client.post(url(subtenant), {"key": "k", "value": 2}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "conflict"
    assert Memory.objects.get(subtenant=subtenant, key="k").value == 1


def test_put_on_a_missing_key_is_404(make_tenant):
    subtenant, _, client = make_tenant()
    response = client.put(url(subtenant, "nope"), {"value": 1}, format="json")
    assert response.status_code == 404
    assert not Memory.objects.exists()


def test_same_key_in_two_subtenants_is_allowed(make_tenant):
    a, _, client_a = make_tenant("a")
    b, _, client_b = make_tenant("b")
    assert client_a.post(url(a), {"key": "k", "value": "a"}, format="json").status_code == 201
    assert client_b.post(url(b), {"key": "k", "value": "b"}, format="json").status_code == 201
    assert client_a.get(url(a, "k")).json()["value"] == "a"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": 1}, "key"),
        ({"key": "k"}, "value"),
        ({"key": "k", "value": None}, "value"),
        ({"key": "has space", "value": 1}, "key"),
        ({"key": "k" * 1_000_000, "value": 1}, "key"),
        ({"key": 12, "value": 1, "description": ["not", "text"]}, "description"),
        ({"key": "k", "value": 1, "bogus": True}, "bogus"),
    ],
)
def test_invalid_memory_names_the_field(make_tenant, body, field):
    subtenant, _, client = make_tenant()
    response = client.post(url(subtenant), body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert field in error["details"]
    assert not Memory.objects.exists()


def test_memory_body_cannot_move_data_to_another_subtenant(make_tenant):
    mine, _, client = make_tenant("mine")
    other, _, _ = make_tenant("other")
    response = client.post(
        url(mine), {"key": "k", "value": 1, "subtenant": str(other.id)}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["subtenant"] == str(mine.id)
    assert not Memory.objects.filter(subtenant=other).exists()
    client.put(
        url(mine, "k"), {"value": 2, "subtenant": str(other.id), "key": "moved"}, format="json"
    )
    assert Memory.objects.get(subtenant=mine).key == "k"
    assert not Memory.objects.filter(subtenant=other).exists()


def test_subtenant_key_gets_404_on_every_memory_endpoint_of_another_tenant(make_tenant):
    victim, _, victim_client = make_tenant("victim")
    victim_client.post(url(victim), {"key": "secret", "value": "s3cr3t"}, format="json")
    _, _, attacker = make_tenant("attacker")
    responses = [
        attacker.get(url(victim)),
        attacker.post(url(victim), {"key": "x", "value": 1}, format="json"),
        attacker.get(url(victim, "secret")),
        attacker.put(url(victim, "secret"), {"value": "pwned"}, format="json"),
        attacker.delete(url(victim, "secret")),
    ]
    assert [r.status_code for r in responses] == [404] * 5
    assert all(b"s3cr3t" not in r.content for r in responses)
    assert Memory.objects.get(subtenant=victim, key="secret").value == "s3cr3t"
    assert Memory.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creation_of_one_key_yields_one_row_and_one_conflict(make_tenant):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serializes writers")
    subtenant, raw, _ = make_tenant()
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def create(value: int) -> None:
        try:
            client = client_for(raw)
            barrier.wait()
            statuses.append(
                client.post(
                    url(subtenant), {"key": "race", "value": value}, format="json"
                ).status_code
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409]
    assert Memory.objects.filter(subtenant=subtenant, key="race").count() == 1
