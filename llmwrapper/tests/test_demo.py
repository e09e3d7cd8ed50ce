"""The demo: `make demo`'s processes, then the README's session against them, as written
(the curl session in bash, the WebSocket session in Python); and the demo's model."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from llmwrapper.testing.ports import free_port
from providers.testing.demo import Conversation, answer, read_conversation

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def readme_block(marker: str) -> str:
    """The code block after `<!-- marker -->` in the README."""
    found = re.search(rf"<!-- {re.escape(marker)} -->\s*```\w*\n(.*?)```", README, re.S)
    assert found, f"README has no block marked {marker!r}"
    return found.group(1)


class Demo:
    """`python manage.py demo`, as `make demo` runs it, with its output collected."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.lines: list[str] = []
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env["STATIC_ROOT"] = str(tmp_path / "static")
        command = [sys.executable, "manage.py", "demo", "--port", str(self.port)]
        command += ["--database-url", f"sqlite:///{tmp_path / 'demo.sqlite3'}"]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90) -> str:
        """The admin key it printed, once it answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "".join(self.lines)
            output = "".join(self.lines)
            key = re.search(r"lw_[\w-]{20,}", output)
            if key and "DEMO serving on" in output:
                try:
                    if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                        return key.group(0)
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise AssertionError("the demo did not start:\n" + "".join(self.lines))

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@pytest.fixture
def demo(tmp_path):
    running = Demo(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_the_readme_session_runs_against_make_demo(demo):
    admin_key = demo.wait_ready()
    health = httpx.get(f"{demo.url}/health").json()
    assert health["demo"] is True
    assert "DEMO" in "".join(demo.lines)

    session = readme_block("demo: curl session")
    session = re.sub(r"^ADMIN=\S+", f"ADMIN={admin_key}", session, count=1, flags=re.M)
    session = session.replace("http://127.0.0.1:8000", demo.url)
    assert f"ADMIN={admin_key}" in session and demo.url in session
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", session + '\necho "KEY=$KEY CHAT=$CHAT"'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = ran.stdout
    assert "This is the demo model" in out  # the sync send's answer
    assert "From your memories I know" in out  # include_memories put them in its context
    assert "event: tool_call" in out and '"name":"calculator"' in out  # the SSE send
    assert "event: delta" in out and "= 20 (worked out by the calculator tool)" in out
    assert out.rstrip().splitlines()[-1].startswith("KEY=lw_")
    values = dict(pair.split("=", 1) for pair in out.rstrip().splitlines()[-1].split())

    script = readme_block("demo: websocket session").replace(
        "127.0.0.1:8000", f"127.0.0.1:{demo.port}"
    )
    ws = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "KEY": values["KEY"], "CHAT": values["CHAT"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ws.returncode == 0, ws.stdout + ws.stderr
    printed = ws.stdout
    assert "tool_call get_current_time" in printed
    assert "tool_result" in printed and "delta" in printed
    assert "message.completed" in printed and "Europe/Paris" in printed

    # Every call was recorded under its model, and the admin says it is a demo.
    login = httpx.get(f"{demo.url}/admin/login/")
    assert login.status_code == 200 and 'id="demo-banner"' in login.text


def test_the_demo_model_calls_both_tools_when_asked_for_both():
    text, calls = answer(
        Conversation(
            user_text="What time is it, and what is 6 * 7?",
            tools={"calculator", "get_current_time"},
        )
    )
    assert text == ""
    assert [c["name"] for c in calls] == ["get_current_time", "calculator"]
    assert calls[1]["arguments"] == {"expression": "6 * 7"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {
                "tools": [{"type": "function", "function": {"name": "calculator"}}],
                "messages": [
                    {"role": "user", "content": "What is 6 * 7?"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {
                                    "name": "calculator",
                                    "arguments": json.dumps({"expression": "6 * 7"}),
                                },
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c1", "content": "42"},
                ],
            },
            id="openai",
        ),
        pytest.param(
            {
                "tools": [{"name": "calculator", "input_schema": {}}],
                "messages": [
                    {"role": "user", "content": "What is 6 * 7?"},
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "type": "tool_use",
                                "id": "t1",
                                "name": "calculator",
                                "input": {"expression": "6 * 7"},
                            }
                        ],
                    },
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}],
                    },
                ],
            },
            id="anthropic",
        ),
        pytest.param(
            {
                "tools": [{"type": "function", "function": {"name": "calculator"}}],
                "messages": [
                    {"role": "user", "content": "What is 6 * 7?"},
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [
                            {
                                "function": {
                                    "name": "calculator",
                                    "arguments": {"expression": "6 * 7"},
                                }
                            }
                        ],
                    },
                    {"role": "tool", "tool_name": "calculator", "content": "42"},
                ],
            },
            id="ollama",
        ),
    ],
)
def test_the_demo_model_answers_with_the_tool_result_in_every_vendors_format(body):
    text, calls = answer(read_conversation(body))
    assert calls == []
    assert text == "6 * 7 = 42 (worked out by the calculator tool)."
