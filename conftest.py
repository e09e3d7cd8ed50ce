"""Fixtures shared by every app's tests: API keys and authenticated HTTP clients."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tenants.models import Subtenant
from tenants.services import api_key_create


def client_for(raw_key: str | None) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def admin_key(db) -> str:
    _, raw = api_key_create(name="test-admin")
    return raw


@pytest.fixture
def admin_client(admin_key: str) -> APIClient:
    return client_for(admin_key)


@pytest.fixture
def make_tenant(db):
    """Create a subtenant and a key for it: returns (subtenant, raw key, client)."""

    def make(name: str = "acme", **fields) -> tuple[Subtenant, str, APIClient]:
        subtenant = Subtenant.objects.create(name=name, **fields)
        _, raw = api_key_create(name=f"{name}-key", subtenant=subtenant)
        return subtenant, raw, client_for(raw)

    return make
