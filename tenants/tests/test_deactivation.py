"""A deactivated subtenant's keys stop working at once in the process that changed it,
whichever way it was changed, even with a long key cache."""

import httpx
import pytest

from tenants.models import Subtenant
from tenants.services import subtenant_update

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def long_key_cache(settings):
    settings.API_KEY_CACHE_SECONDS = 60


def _get(base: str, subtenant: Subtenant, raw: str) -> httpx.Response:
    return httpx.get(
        f"{base}/api/v1/subtenants/{subtenant.id}",
        headers={"Authorization": f"Bearer {raw}"},
        timeout=10,
    )


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_deactivating_over_http_refuses_the_next_request(
    live_server_url, long_key_cache, admin_key, make_tenant, method
):
    subtenant, raw, _ = make_tenant("soon-inactive")
    assert _get(live_server_url, subtenant, raw).status_code == 200

    changed = httpx.request(
        method,
        f"{live_server_url}/api/v1/subtenants/{subtenant.id}",
        json={"is_active": False},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=10,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["is_active"] is False

    refused = _get(live_server_url, subtenant, raw)
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "unauthenticated"

    reactivated = httpx.patch(
        f"{live_server_url}/api/v1/subtenants/{subtenant.id}",
        json={"is_active": True},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=10,
    )
    assert reactivated.status_code == 200
    assert _get(live_server_url, subtenant, raw).status_code == 200


def test_deactivating_through_the_service_refuses_the_next_request(
    live_server_url, long_key_cache, make_tenant
):
    subtenant, raw, _ = make_tenant("service-deactivated")
    assert _get(live_server_url, subtenant, raw).status_code == 200
    subtenant_update(subtenant=Subtenant.objects.get(pk=subtenant.pk), is_active=False)
    assert _get(live_server_url, subtenant, raw).status_code == 401


def test_a_new_limit_applies_to_the_next_request(live_server_url, long_key_cache, make_tenant):
    subtenant, raw, _ = make_tenant("newly-limited")
    assert _get(live_server_url, subtenant, raw).status_code == 200
    subtenant_update(subtenant=Subtenant.objects.get(pk=subtenant.pk), rate_limit_rpm=1)
    assert _get(live_server_url, subtenant, raw).status_code == 200
    assert _get(live_server_url, subtenant, raw).status_code == 429
