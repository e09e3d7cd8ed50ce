import json

import pytest
from django.core.management import call_command

from conftest import client_for
from tenants.models import ApiKey

pytestmark = pytest.mark.django_db


def test_request_without_a_key_is_401_in_the_error_shape(db):
    response = client_for(None).get("/api/v1/subtenants")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer lw_not-a-real-key", "Basic abc", "Bearer", "lw_x"])
def test_invalid_or_malformed_key_is_401(db, header):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/subtenants")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthenticated"


def test_admin_creates_lists_and_revokes_a_subtenant_key(admin_client, make_tenant):
    subtenant, _, _ = make_tenant("acme")
    created = admin_client.post(
        f"/api/v1/subtenants/{subtenant.id}/keys", {"name": "ci"}, format="json"
    )
    assert created.status_code == 201
    raw = created.json()["key"]
    assert raw.startswith("lw_") and created.json()["prefix"] == raw[:12]
    new_client = client_for(raw)
    assert new_client.get(f"/api/v1/subtenants/{subtenant.id}").status_code == 200

    listed = admin_client.get(f"/api/v1/subtenants/{subtenant.id}/keys").json()["results"]
    assert {row["name"] for row in listed} == {"acme-key", "ci"}
    assert all("key" not in row and "key_hash" not in row for row in listed)

    key_id = created.json()["id"]
    revoked = admin_client.delete(f"/api/v1/subtenants/{subtenant.id}/keys/{key_id}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    response = new_client.get(f"/api/v1/subtenants/{subtenant.id}")
    assert response.status_code == 401


def test_revoked_admin_key_is_401(admin_client):
    created = admin_client.post("/api/v1/keys", {"name": "second-admin"}, format="json")
    assert created.status_code == 201 and created.json()["subtenant"] is None
    second = client_for(created.json()["key"])
    assert second.get("/api/v1/keys").status_code == 200
    admin_client.delete(f"/api/v1/keys/{created.json()['id']}")
    assert second.get("/api/v1/keys").status_code == 401


def test_subtenant_key_cannot_manage_keys(make_tenant):
    subtenant, _, client = make_tenant("acme")
    assert client.get(f"/api/v1/subtenants/{subtenant.id}/keys").status_code == 403
    assert (
        client.post(
            f"/api/v1/subtenants/{subtenant.id}/keys", {"name": "x"}, format="json"
        ).status_code
        == 403
    )
    assert client.post("/api/v1/keys", {"name": "root"}, format="json").status_code == 403
    assert ApiKey.objects.filter(subtenant__isnull=True).count() == 0


def test_key_of_an_inactive_subtenant_is_refused(make_tenant):
    subtenant, _, client = make_tenant("sleepy", is_active=False)
    assert client.get(f"/api/v1/subtenants/{subtenant.id}").status_code == 401


def test_key_id_of_another_subtenant_is_404(admin_client, make_tenant):
    a, _, _ = make_tenant("a")
    b, _, _ = make_tenant("b")
    b_key = ApiKey.objects.get(subtenant=b)
    assert admin_client.delete(f"/api/v1/subtenants/{a.id}/keys/{b_key.id}").status_code == 404
    b_key.refresh_from_db()
    assert b_key.revoked_at is None


def test_no_response_contains_a_key_hash_or_a_full_key_twice(admin_client, make_tenant):
    subtenant, raw, _ = make_tenant("acme")
    key = ApiKey.objects.get(subtenant=subtenant)
    bodies = [
        admin_client.get(f"/api/v1/subtenants/{subtenant.id}/keys").content,
        admin_client.get("/api/v1/keys").content,
        admin_client.get(f"/api/v1/subtenants/{subtenant.id}").content,
        admin_client.get("/api/v1/subtenants").content,
    ]
    for body in bodies:
        assert key.key_hash.encode() not in body
        assert raw.encode() not in body


def test_last_used_is_recorded(make_tenant):
    subtenant, _, client = make_tenant("acme")
    client.get(f"/api/v1/subtenants/{subtenant.id}")
    assert ApiKey.objects.get(subtenant=subtenant).last_used_at is not None


def test_bootstrap_command_creates_an_admin_key_only_once(db, capsys):
    call_command("create_admin_key", "--if-none")
    first = capsys.readouterr().out.strip().splitlines()
    assert first and first[-1].startswith("lw_")
    assert client_for(first[-1]).get("/api/v1/keys").status_code == 200
    call_command("create_admin_key", "--if-none")
    assert capsys.readouterr().out.strip() == ""
    assert ApiKey.objects.filter(subtenant__isnull=True).count() == 1
    assert json.dumps([k.key_hash for k in ApiKey.objects.all()]).count(first[-1]) == 0
