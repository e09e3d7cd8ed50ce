import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_malformed_json_is_400_in_the_error_shape(admin_client):
    response = admin_client.post(
        "/api/v1/subtenants", data='{"name": "x",', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "malformed_request"


def test_wrong_types_name_the_field(admin_client):
    response = admin_client.post(
        "/api/v1/subtenants", {"name": ["a"], "is_active": "perhaps"}, format="json"
    )
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert set(details) >= {"name", "is_active"}


def test_body_over_the_limit_is_413(admin_client):
    payload = '{"name": "' + "x" * (settings.MAX_REQUEST_BODY_BYTES + 10) + '"}'
    response = admin_client.post(
        "/api/v1/subtenants", data=payload, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


def test_unknown_api_path_is_a_json_404(admin_client):
    response = admin_client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert admin_client.get("/api/v1/chats/not-a-uuid").status_code == 404


def test_wrong_method_is_a_json_405(admin_client):
    response = admin_client.patch("/api/v1/subtenants", {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "method_not_allowed"


def test_wrong_content_type_is_415(admin_client):
    response = admin_client.post(
        "/api/v1/subtenants", data="name=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["error"]["type"] == "unsupported_media_type"


def test_openapi_schema_declares_bearer_auth_and_the_contract_paths(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"]["scheme"] == "bearer"
    for path in [
        "/api/v1/subtenants",
        "/api/v1/subtenants/{id}",
        "/api/v1/subtenants/{subtenant_pk}/chats",
        "/api/v1/chats/{id}",
        "/api/v1/chats/{chat_pk}/messages",
        "/api/v1/subtenants/{subtenant_pk}/memories",
        "/api/v1/subtenants/{subtenant_pk}/memories/{key}",
    ]:
        assert path in schema["paths"], path
    assert client.get("/api/docs/").status_code == 200
