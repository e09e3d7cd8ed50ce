"""The admin screens of connections and routes."""

import pytest
from django.contrib.auth.models import User

from connections.models import Connection, Route
from llmwrapper.secrets import unseal

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_a_connection_is_added_with_its_key_which_is_never_shown(staff):
    response = staff.post(
        "/admin/connections/connection/add/",
        {
            "name": "vllm",
            "kind": "openai_compatible",
            "base_url": "http://10.0.0.5:8000/v1",
            "default_model": "llama",
            "model_list": "[]",
            "api_version": "",
            "is_active": "on",
            "api_key": "sk-admin-entered-key-4321",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    connection = Connection.objects.get(name="vllm")
    assert unseal(connection.secrets_sealed)["api_key"] == "sk-admin-entered-key-4321"
    page = staff.get(f"/admin/connections/connection/{connection.pk}/change/").content.decode()
    assert "sk-admin-entered-key" not in page and "****4321" in page
    assert "vllm" in staff.get("/admin/connections/connection/").content.decode()


def test_routes_are_listed(staff):
    Route.objects.create(name="gpt-fast", deployments=[{"connection": "openai"}])
    assert "gpt-fast" in staff.get("/admin/connections/route/").content.decode()
