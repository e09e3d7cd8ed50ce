"""A vendor is described once, by its adapter: registering a descriptor is enough for it
to be configurable, listed, chosen as a subtenant's default and refused when unset."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client

from conftest import async_client_for
from providers import gateway
from providers.core import descriptors
from providers.core.base import Capabilities, ProviderDescriptor, Setting
from providers.core.registry import DEFAULT_PROVIDER_NAMES, build_registry, configs_from_env
from providers.core.vendors.openai import OpenAIProvider
from providers.testing import FakeOpenAI
from tenants.models import Subtenant, provider_choices

# A fifth vendor as one would add it: an OpenAI-compatible cloud that wants a key.
ACME = ProviderDescriptor(
    name="acme",
    kind="openai_compatible",
    label="Acme AI",
    adapter=OpenAIProvider,
    settings=(
        Setting("ACME_API_KEY", "api_key"),
        Setting("ACME_BASE_URL", "base_url", "https://api.acme.invalid/v1"),
        Setting("ACME_DEFAULT_MODEL", "default_model", "acme-large"),
    ),
    key_required=True,
    capabilities=Capabilities(tools=True, images=True),
)


@pytest.fixture
def acme() -> Iterator[ProviderDescriptor]:
    descriptors.register(ACME)
    gateway.registry_reset()
    try:
        yield ACME
    finally:
        descriptors.unregister(ACME.name)
        gateway.registry_reset()


@pytest.fixture
def acme_fake(acme, settings) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-acme") as fake:
        settings.ACME_API_KEY = "sk-acme"
        settings.ACME_BASE_URL = fake.base_url
        yield fake


def ask(provider: str) -> dict:
    return {"provider": provider, "messages": [{"role": "user", "content": "Hello"}]}


@pytest.mark.django_db(transaction=True)
async def test_a_registered_vendor_answers_with_its_default_model(acme_fake, make_tenant):
    from asgiref.sync import sync_to_async

    _, raw, _ = await sync_to_async(make_tenant)("acme-user")

    response = await async_client_for(raw).post(
        "/api/v1/llm/complete", ask("acme"), content_type="application/json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["provider"], body["message"]["content"]) == ("acme", "echo: Hello")
    sent = acme_fake.chat_requests()[-1]
    assert sent.body["model"] == "acme-large"
    assert sent.headers["authorization"] == "Bearer sk-acme"


@pytest.mark.django_db(transaction=True)
async def test_a_registered_vendor_without_its_key_is_a_400_naming_it(acme, settings, make_tenant):
    from asgiref.sync import sync_to_async

    settings.ACME_API_KEY = ""
    _, raw, _ = await sync_to_async(make_tenant)("acme-user")

    response = await async_client_for(raw).post(
        "/api/v1/llm/complete", ask("acme"), content_type="application/json"
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "provider_not_configured"
    assert error["message"] == "Provider 'acme' is not configured: set ACME_API_KEY"


@pytest.mark.django_db(transaction=True)
async def test_models_lists_a_registered_vendor_with_its_capabilities(
    acme_fake, llm_fakes, make_tenant
):
    from asgiref.sync import sync_to_async

    _, raw, _ = await sync_to_async(make_tenant)("acme-user")

    response = await async_client_for(raw).get("/api/v1/llm/models")

    rows = {row["name"]: row for row in response.json()["providers"]}
    assert list(rows) == [d.name for d in descriptors.all_descriptors()]
    assert rows["acme"]["configured"] is True
    assert rows["acme"]["default_model"] == "acme-large"
    assert rows["acme"]["capabilities"] == {
        "tools": True,
        "images": True,
        "documents": False,
        "image_urls": False,
        "embeddings": False,
    }
    assert rows["anthropic"]["capabilities"]["embeddings"] is False
    assert rows["openai"]["capabilities"]["embeddings"] is True


@pytest.mark.django_db
def test_a_registered_vendor_can_be_a_subtenants_default_provider(acme, admin_client):
    response = admin_client.post(
        "/api/v1/subtenants", {"name": "acme-co", "default_provider": "acme"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["default_provider"] == "acme"
    Subtenant(name="acme-co-2", default_provider="acme").full_clean()


@pytest.mark.django_db
def test_an_unregistered_vendor_is_refused_as_default_provider(admin_client):
    response = admin_client.post(
        "/api/v1/subtenants", {"name": "x", "default_provider": "acme"}, format="json"
    )

    assert response.status_code == 400
    with pytest.raises(ValidationError):
        Subtenant(name="y", default_provider="acme").full_clean()


@pytest.mark.django_db
def test_the_admin_offers_every_registered_vendor(acme):
    User.objects.create_superuser("root", "root@example.com", "a-long-passphrase")
    browser = Client()
    browser.force_login(User.objects.get(username="root"))

    page = browser.get("/admin/tenants/subtenant/add/").content.decode()

    for described in descriptors.all_descriptors():
        assert f'<option value="{described.name}">{described.label}</option>' in page


def test_every_derived_list_names_the_registered_vendors(acme):
    names = [d.name for d in descriptors.all_descriptors()]

    assert [c.name for c in configs_from_env({})] == names
    assert [name for name, _ in provider_choices()] == names
    assert set(build_registry(configs_from_env({})).names()) == set(names)
    assert {"ACME_API_KEY", "ACME_BASE_URL", "ACME_DEFAULT_MODEL"} <= set(gateway._setting_names())


def test_settings_defaults_are_the_descriptors_defaults():
    # The built-in vendors' settings exist with their descriptor's default (no env set
    # in tests), so README, settings and registry cannot disagree on a default model.
    assert {"openai", "anthropic", "local", "private"} <= set(DEFAULT_PROVIDER_NAMES)
    for described in descriptors.all_descriptors():
        for setting in described.settings:
            expected = setting.parse(setting.default) if setting.default else ""
            assert getattr(django_settings, setting.name) == expected, setting.name
    anthropic = {c.name: c for c in configs_from_env({})}["anthropic"]
    assert anthropic.default_model == django_settings.ANTHROPIC_DEFAULT_MODEL


def test_a_vendor_kind_served_by_another_adapter_is_refused():
    class Other(OpenAIProvider):
        pass

    clash = ProviderDescriptor(
        name="clash",
        kind="openai",
        label="Clash",
        adapter=Other,
        settings=(),
        key_required=False,
        capabilities=Capabilities(),
    )

    with pytest.raises(ValueError, match="already served"):
        descriptors.register(clash)


def test_reading_the_descriptors_loads_no_vendor_sdk():
    code = (
        "import sys, providers.core.descriptors, providers.core.registry;"
        "loaded = [m for m in ('openai', 'anthropic') if m in sys.modules];"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=django_settings.BASE_DIR)
