"""The admin and the API docs in a real browser (Debian's chromium, driven by Playwright),
against the service as `make serve` runs it: uvicorn, static files collected (hashed,
compressed) and served by the application. Every request that leaves 127.0.0.1 is
refused by the browser, so nothing may come from the internet.

The screenshots in docs/screenshots/ (shown in the README) are taken here.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "a-long-passphrase"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# As the machine's headless chromium must run: no sandbox as root, no background calls.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _need_browser() -> None:
    missing = None
    if not CHROMIUM.exists():
        missing = "Debian's chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (requirements-dev.txt)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the browser tests: {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    """`collectstatic` as `make serve` runs it: hashed names and compressed copies."""
    _need_browser()
    root = tmp_path_factory.mktemp("static")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env={**env, "STATIC_ROOT": str(root)},
        check=True,
        timeout=120,
    )
    assert (root / "staticfiles.json").exists()
    return root


@pytest.fixture
def served(app_process, static_root, tmp_path):
    """The service in a uvicorn process of its own, in production's static mode, with
    the demo's model behind every provider."""
    from providers.testing.demo import provider_settings, start_demo_servers

    servers = start_demo_servers()
    try:
        url = app_process(
            PYTEST_VERSION="",  # production's static files: hashed, compressed, collected
            STATIC_ROOT=str(static_root),
            DEBUG="false",
            ATTACHMENTS_ROOT=str(tmp_path / "attachments"),
            **provider_settings(servers),
        )
        yield url
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page in a browser context that refuses every request off 127.0.0.1, and the
    record of what it refused and what failed to load."""

    def __init__(self, browser, base_url: str) -> None:
        self.context = browser.new_context(
            base_url=base_url, viewport={"width": 1280, "height": 900}, device_scale_factor=1
        )
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        self.page.on(
            "response", lambda r: r.status >= 400 and self.failed.append(f"{r.url} {r.status}")
        )
        self.page.on(
            "console", lambda m: m.type == "error" and self.failed.append(f"console: {m.text}")
        )

    def _route(self, route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in ("127.0.0.1", "localhost") or url.startswith(
            ("data:", "blob:")
        ):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")

    def login(self) -> None:
        self.page.goto("/admin/login/")
        self.page.fill("#id_username", "root")
        self.page.fill("#id_password", PASSWORD)
        self.page.click("input[type=submit]")
        self.page.wait_for_url("**/admin/")

    def close(self) -> None:
        self.context.close()


def _static_loaded(page) -> None:
    """The admin's stylesheet applies (an unstyled admin has a transparent header)."""
    header = page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header not in ("rgba(0, 0, 0, 0)", "transparent"), header
    sheets = page.evaluate("[...document.styleSheets].map(s => s.href).filter(Boolean)")
    assert any("/static/admin/css/base." in href for href in sheets), sheets
    # Hashed names from collectstatic's manifest, as in production.
    assert all(len(Path(urlsplit(h).path).suffixes) >= 2 for h in sheets if "/static/" in h), sheets


def _usage_history(subtenants) -> None:
    """Call records over the past two weeks, for charts with something to show."""
    from providers.models import LlmCall

    rng = random.Random(7)
    models = [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("local", "llama3.2")]
    now = dt.datetime.now(dt.UTC)
    rows = []
    for days_ago in range(14):
        for subtenant in subtenants:
            for _ in range(rng.randint(3, 9)):
                provider, model = rng.choice(models)
                status = rng.choices(["ok", "error", "interrupted"], [20, 2, 1])[0]
                tokens_in, tokens_out = rng.randint(50, 900), rng.randint(10, 400)
                record = LlmCall(
                    subtenant=subtenant, source="chat", provider=provider, model=model,
                    status=status, input_tokens=tokens_in, output_tokens=tokens_out,
                    latency_ms=rng.randint(150, 2500),
                )  # fmt: skip
                if hasattr(record, "cost_usd"):
                    record.cost_usd = Decimal(tokens_in * 15 + tokens_out * 60) / Decimal(10**8)
                rows.append(
                    (record, now - dt.timedelta(days=days_ago, minutes=rng.randint(0, 600)))
                )
    LlmCall.objects.bulk_create([record for record, _ in rows])
    for record, moment in rows:  # auto_now_add stamped them all with the present
        LlmCall.objects.filter(pk=record.pk).update(created_at=moment)


def _a_chat_with_tools(base_url: str):
    """A subtenant and a chat whose turns went through the service: an answer, the
    calculator and the clock called by the model, their results answered."""
    from chats.models import Chat
    from tenants.models import Subtenant
    from tenants.services import api_key_create

    acme = Subtenant.objects.create(name="acme", default_provider="openai")
    _, key = api_key_create(name="backend", subtenant=acme)
    chat = Chat.objects.create(subtenant=acme, title="Support")
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as http:
        for text in ("Hello!", "What is (2 + 3) * 4?", "What time is it in Europe/Paris?"):
            sent = http.post(
                f"/api/v1/chats/{chat.pk}/messages", json={"content": text}, timeout=30
            )
            assert sent.status_code == 200, sent.text
    return acme, chat


@pytest.fixture
def chat(served):
    """A staff user, a chat with tool calls, and two weeks of call records (made before
    the browser starts: Playwright's loop then runs in this thread)."""
    from django.contrib.auth.models import User

    from providers.records import wait_idle
    from tenants.models import Subtenant

    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    acme, chat = _a_chat_with_tools(served)
    wait_idle()
    _usage_history([acme, Subtenant.objects.create(name="globex")])
    return chat


def test_the_admin_dashboard_and_a_transcript_render_with_every_asset(served, chat, browser):
    watched = Watched(browser, served)
    try:
        watched.login()
        _static_loaded(watched.page)

        page = watched.page
        page.goto("/admin/usage/")
        charts = page.locator("svg[data-chart]")
        assert charts.count() >= 4
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box and box["width"] > 300 and box["height"] > 80
        assert page.locator("svg[data-chart=requests] rect.bar").count() >= 14
        assert page.locator("svg[data-chart=latency] circle.point").count() >= 14
        assert page.locator("#by-model tbody tr").count() >= 3
        _static_loaded(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

        page.goto(f"/admin/chats/chat/{chat.pk}/change/")
        transcript = page.locator("#transcript")
        transcript.wait_for()
        assert (
            page.locator("#transcript .lw-tool[data-tool=calculator] .lw-result").inner_text()
            == "20"
        )
        assert page.locator("#transcript .lw-tool[data-tool=get_current_time]").count() == 1
        assert "= 20" in transcript.inner_text()
        roles = page.locator("#transcript article").evaluate_all(
            "els => els.map(e => e.dataset.role)"
        )
        assert roles[0] == "user" and roles[-1] == "assistant"
        _static_loaded(page)
        page.locator("fieldset.lw-transcript-set").screenshot(
            path=str(SCREENSHOTS / "transcript.png")
        )
    finally:
        watched.close()
    assert watched.failed == [], watched.failed
    assert watched.blocked == [], watched.blocked


def test_the_api_docs_render_with_no_internet(served, browser):
    watched = Watched(browser, served)
    try:
        page = watched.page
        page.goto("/api/docs/")
        title = page.locator(".swagger-ui .info .title")
        title.wait_for(timeout=20_000)
        assert "llmwrapper API" in title.inner_text()
        page.locator(".opblock").first.wait_for()
        assert page.locator(".opblock").count() > 20  # the operations, from /api/schema/

        page.goto("/api/redoc/")
        page.get_by_role("heading", name="llmwrapper API").first.wait_for(timeout=20_000)
    finally:
        watched.close()
    # Swagger UI and ReDoc came from our static files. The one thing asked of the
    # internet is ReDoc's "by Redocly" logo, which hides itself when it cannot load.
    assert set(watched.blocked) <= {REDOC_LOGO}, watched.blocked
    failed = [
        f for f in watched.failed if REDOC_LOGO not in f and "ERR_INTERNET_DISCONNECTED" not in f
    ]
    assert failed == [], watched.failed
