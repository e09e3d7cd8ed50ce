import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chats.models import Chat, Message
from conftest import client_for
from memories.models import Memory
from tenants.models import Subtenant

pytestmark = pytest.mark.django_db


def test_admin_creates_reads_updates_and_deletes_a_subtenant(admin_client):
    created = admin_client.post(
        "/api/v1/subtenants",
        {
            "name": "acme",
            "description": "Acme Inc",
            "metadata": {"tier": "gold"},
            "default_provider": "anthropic",
            "default_model": "claude-x",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "acme" and body["metadata"] == {"tier": "gold"}
    assert body["is_active"] is True
    sid = body["id"]

    assert admin_client.get(f"/api/v1/subtenants/{sid}").json()["description"] == "Acme Inc"

    updated = admin_client.put(
        f"/api/v1/subtenants/{sid}", {"description": "Acme Corp", "is_active": False}, format="json"
    )
    assert updated.status_code == 200
    assert updated.json()["description"] == "Acme Corp"
    assert updated.json()["is_active"] is False
    assert updated.json()["name"] == "acme"

    listed = admin_client.get("/api/v1/subtenants").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == sid

    assert admin_client.delete(f"/api/v1/subtenants/{sid}").status_code == 204
    assert admin_client.get(f"/api/v1/subtenants/{sid}").status_code == 404


def test_duplicate_subtenant_name_is_a_conflict(admin_client):
    assert (
        admin_client.post("/api/v1/subtenants", {"name": "dup"}, format="json").status_code == 201
    )
    second = admin_client.post("/api/v1/subtenants", {"name": "dup"}, format="json")
    assert second.status_code == 409
    assert second.json()["error"]["type"] == "conflict"


def test_subtenant_key_sees_only_its_own_subtenant(make_tenant):
    mine, _, client = make_tenant("mine")
    other, _, _ = make_tenant("other")
    listed = client.get("/api/v1/subtenants").json()
    assert [row["id"] for row in listed["results"]] == [str(mine.id)]
    assert client.get(f"/api/v1/subtenants/{mine.id}").status_code == 200
    response = client.get(f"/api/v1/subtenants/{other.id}")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_subtenant_key_cannot_manage_subtenants(make_tenant):
    mine, _, client = make_tenant("mine")
    assert client.post("/api/v1/subtenants", {"name": "new"}, format="json").status_code == 403
    assert (
        client.put(f"/api/v1/subtenants/{mine.id}", {"name": "x"}, format="json").status_code == 403
    )
    assert client.delete(f"/api/v1/subtenants/{mine.id}").status_code == 403
    assert Subtenant.objects.filter(pk=mine.pk, name="mine").exists()


def test_unknown_provider_is_rejected_with_the_field_named(admin_client):
    response = admin_client.post(
        "/api/v1/subtenants", {"name": "x", "default_provider": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert "default_provider" in response.json()["error"]["details"]


def test_deleting_a_subtenant_deletes_its_chats_messages_memories_and_keys(
    admin_client, make_tenant
):
    subtenant, raw, _ = make_tenant("doomed")
    chat = Chat.objects.create(subtenant=subtenant, title="t")
    Message.objects.create(chat=chat, sequence=1, role="user", content="hi")
    Memory.objects.create(subtenant=subtenant, key="k", value=1)
    survivor, _, _ = make_tenant("survivor")
    Memory.objects.create(subtenant=survivor, key="k", value=2)

    assert admin_client.delete(f"/api/v1/subtenants/{subtenant.id}").status_code == 204

    assert not Chat.objects.filter(pk=chat.pk).exists()
    assert not Message.objects.filter(chat_id=chat.pk).exists()
    assert not Memory.objects.filter(subtenant_id=subtenant.pk).exists()
    assert Memory.objects.filter(subtenant=survivor).count() == 1
    assert client_for(raw).get("/api/v1/subtenants").status_code == 401


def test_read_only_fields_in_the_body_are_ignored(admin_client, make_tenant):
    subtenant, _, _ = make_tenant("fixed")
    response = admin_client.put(
        f"/api/v1/subtenants/{subtenant.id}",
        {
            "id": "00000000-0000-0000-0000-000000000001",
            "created_at": "2000-01-01T00:00:00Z",
            "description": "new",
        },
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["id"] == str(subtenant.id)
    assert not Subtenant.objects.filter(pk="00000000-0000-0000-0000-000000000001").exists()
    subtenant.refresh_from_db()
    assert subtenant.created_at.year != 2000


def test_subtenant_list_is_paginated_with_flat_query_count(admin_client):
    Subtenant.objects.bulk_create([Subtenant(name=f"t{i}") for i in range(5)])
    admin_client.get("/api/v1/subtenants")  # the key's first use records last_used_at
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get("/api/v1/subtenants?limit=2").status_code == 200
    Subtenant.objects.bulk_create([Subtenant(name=f"u{i}") for i in range(50)])
    with CaptureQueriesContext(connection) as many:
        page = admin_client.get("/api/v1/subtenants?limit=40").json()
    assert len(many) == len(few)
    assert page["count"] == 55 and len(page["results"]) == 40 and page["next"]


def test_default_provider_names_a_connection_the_subtenant_sees(admin_client, make_tenant):
    acme, _, acme_client = make_tenant("acme")
    other, _, _ = make_tenant("other")
    created = acme_client.post(
        "/api/v1/connections", {"name": "acme-private", "kind": "openai"}, format="json"
    )
    assert created.status_code == 201, created.content

    def set_default(subtenant, provider):
        return admin_client.put(
            f"/api/v1/subtenants/{subtenant.id}", {"default_provider": provider}, format="json"
        )

    refused = set_default(other, "acme-private")
    assert refused.status_code == 400
    assert refused.json() == set_default(other, "nobody-uses").json()
    new = admin_client.post(
        "/api/v1/subtenants", {"name": "new", "default_provider": "acme-private"}, format="json"
    )
    assert new.status_code == 400 and "default_provider" in new.json()["error"]["details"]
    assert set_default(acme, "acme-private").status_code == 200
    assert Subtenant.objects.get(pk=acme.pk).default_provider == "acme-private"
    assert Subtenant.objects.get(pk=other.pk).default_provider == ""
