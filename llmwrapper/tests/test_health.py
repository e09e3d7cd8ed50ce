import pytest
from django.db import connection
from django.test import override_settings


@pytest.mark.django_db
def test_health_reports_ok(client):
    response = client.get("/health")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_health_reports_a_stopped_database(client):
    import copy

    original = copy.deepcopy(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-dir/db.sqlite3"
    else:
        connection.settings_dict.update({"HOST": "127.0.0.1", "PORT": "1"})
        connection.settings_dict["OPTIONS"].get("pool", {})["timeout"] = 1
        connection.close_pool()  # a pool keeps the old server's connections
    try:
        response = client.get("/health")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)
        if connection.vendor == "postgresql":
            connection.close_pool()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["status"] == "down"
    assert body["checks"]["database"]["required"] is True
    assert "nonexistent" not in response.content.decode()


@pytest.mark.django_db
def test_health_reports_an_unreachable_redis_as_degraded_but_serving(client):
    # Without Redis the API still answers (limits count per process), so a load
    # balancer should keep the process: 200, with the status and the check saying so.
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == {
        "status": "down",
        "error": "ConnectionError",
        "required": False,
    }
    assert body["checks"]["database"]["required"] is True
