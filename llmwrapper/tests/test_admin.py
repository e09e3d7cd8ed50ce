"""The Django admin: login with CSRF protection and the screens of every model."""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser():
    User.objects.create_superuser("root", "root@example.com", "a-long-passphrase")
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = browser.post(
        "/admin/login/",
        {"username": "root", "password": "a-long-passphrase", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302, response.content[:500]
    return browser


def test_admin_login_is_protected_against_csrf():
    User.objects.create_superuser("root", "root@example.com", "a-long-passphrase")
    browser = Client(enforce_csrf_checks=True)
    browser.get("/admin/login/")
    response = browser.post("/admin/login/", {"username": "root", "password": "a-long-passphrase"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/tenants/subtenant/",
        "/admin/tenants/apikey/",
        "/admin/tenants/apikey/add/",
        "/admin/tenants/tokenusage/",
        "/admin/chats/chat/",
        "/admin/chats/message/",
        "/admin/memories/memory/",
        "/admin/providers/llmcall/",
        "/admin/tools/function/",
        "/admin/tools/mcpserver/",
    ],
)
def test_admin_screens_render(admin_browser, path):
    assert admin_browser.get(path).status_code == 200


def test_admin_path_without_slash_redirects():
    response = Client().get("/admin")
    assert response.status_code == 301 and response["Location"] == "/admin/"
