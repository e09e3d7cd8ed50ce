"""Schemathesis against the running service: no server errors, answers as documented.

The service runs in its own uvicorn process with every provider pointed at the fake
vendor servers; schemathesis reads `/api/schema/` and sends generated requests (valid
and invalid) to every operation, once with an admin key and once with a subtenant key,
checking that no answer is a 5xx and that each status, content type, header and body
is the one the schema documents.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chats.models import Chat
from memories.models import Memory
from tenants.models import Subtenant
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)
# Test cases per operation and phase: enough to reach every branch of the validation,
# small enough for a couple of minutes per run.
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def config_file(path: Path, *, subtenant: Subtenant, chat: Chat, admin: bool) -> Path:
    """Path parameters that name existing data, so requests get past the 404s.

    Other ids schemathesis learns from the answers (a listed chat is then read,
    changed and deleted).
    """
    lines = [
        "[parameters]",
        f'"path.subtenant_pk" = "{subtenant.id}"',
        f'"path.chat_pk" = "{chat.id}"',
        "",
    ]
    if admin:
        # Registering an MCP server over stdio starts the command it names (admin only):
        # generated commands are not run.
        lines += [
            "[[operations]]",
            'include-name = "POST /api/v1/mcp/servers"',
            "enabled = false",
            "",
        ]
    path.write_text("\n".join(lines))
    return path


def run_schemathesis(base_url: str, key: str, workdir: Path, config: Path) -> dict:
    report = workdir / "report.json"
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{base_url}/api/schema/",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        "20261201",
        "--workers",
        "1",
        "--no-shrink",
        # A shared, loaded machine is slow at times: that is no failure of the API.
        "--suppress-health-check",
        "all",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
        *os.environ.get("SCHEMATHESIS_ARGS", "").split(),
    ]
    result = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=600, check=False
    )
    if not report.exists():
        pytest.fail(f"schemathesis did not run:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}")
    summary = json.loads(report.read_text())
    if result.returncode != 0:
        pytest.fail(
            "schemathesis found problems: "
            + json.dumps({"failures": summary["failures"], "errors": summary["errors"]})
            + "\n"
            + result.stdout[-20000:]
        )
    return summary


@pytest.fixture
def service(app_process, tmp_path):
    from providers.testing import FakeAnthropic, FakeOllama, FakeOpenAI

    subtenant = Subtenant.objects.create(name="acme", default_provider="openai")
    _, admin = api_key_create(name="schemathesis-admin")
    _, tenant = api_key_create(name="schemathesis-tenant", subtenant=subtenant)
    with (
        FakeOpenAI() as openai,
        FakeAnthropic() as anthropic,
        FakeOllama() as local,
        FakeOpenAI() as private,
    ):
        url = app_process(
            OPENAI_API_KEY="sk-test-openai",
            OPENAI_BASE_URL=openai.base_url,
            ANTHROPIC_API_KEY="sk-test-anthropic",
            ANTHROPIC_BASE_URL=anthropic.base_url,
            LOCAL_LLM_ENDPOINT=local.base_url,
            PRIVATE_CLOUD_ENDPOINT=private.base_url,
            PRIVATE_CLOUD_API_KEY="sk-test-private",
            DEFAULT_LLM_PROVIDER="openai",
            LLM_FALLBACKS="",
            PROVIDER_MAX_RETRIES="0",
            PROVIDER_READ_TIMEOUT="5",
            MCP_TIMEOUT="2",
            OUTBOUND_TIMEOUT="2",
            OUTBOUND_ALLOWED_HOSTS="",
            RATE_LIMIT_RPM="0",
            RATE_LIMIT_KEY_RPM="0",
            RATE_LIMIT_TPM="0",
            LOG_LEVEL="ERROR",
        )
        yield url, subtenant, {"admin": admin, "tenant": tenant}


def test_the_api_answers_as_its_schema_says(service, tmp_path):
    url, subtenant, keys = service
    # The subtenant key first: the admin run may delete the subtenant, whose ids
    # schemathesis learns from the answers. Each run gets a chat and a memory of its own.
    for name in ("tenant", "admin"):
        chat = Chat.objects.create(subtenant=subtenant, title="support", provider="openai")
        Memory.objects.get_or_create(subtenant=subtenant, key="user.language", value="French")
        workdir = tmp_path / name
        workdir.mkdir()
        config = config_file(
            workdir / "schemathesis.toml", subtenant=subtenant, chat=chat, admin=name == "admin"
        )
        summary = run_schemathesis(url, keys[name], workdir, config)
        assert summary["operations"]["tested"] >= 40, summary["operations"]
        assert summary["test_cases"]["generated"] > 500, summary["test_cases"]
