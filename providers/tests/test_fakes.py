"""The fake vendor servers themselves: concurrency, auth, and the standalone entry point."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from providers.core.errors import ProviderAuthError
from providers.core.registry import ProviderConfig, build_registry
from providers.testing import FakeAnthropic, FakeOllama, FakeOpenAI
from providers.tests.conftest import ask

REPO = Path(__file__).resolve().parents[2]


async def test_a_slow_scripted_answer_does_not_hold_up_other_requests():
    async with FakeOllama() as fake:
        fake.enqueue(delay=0.6)
        body = {"model": "m", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient(base_url=fake.url) as client:
            slow = asyncio.create_task(client.post("/api/chat", json=body))
            await asyncio.sleep(0.05)  # let the slow request take the scripted delay
            started = time.monotonic()
            quick = await asyncio.gather(*(client.post("/api/chat", json=body) for _ in range(20)))
            quick_elapsed = time.monotonic() - started
            await slow

    assert all(r.json()["message"]["content"] == "echo: hi" for r in quick)
    assert quick_elapsed < 0.5
    assert len(fake.chat_requests()) == 21


async def test_a_fake_with_a_key_rejects_other_keys():
    async with FakeOpenAI(api_key="right-key") as fake:
        config = ProviderConfig("openai", "openai", "wrong-key", fake.base_url, "gpt-4o-mini")
        registry = build_registry([config])
        try:
            with pytest.raises(ProviderAuthError) as caught:
                await registry.get("openai").complete(ask())
        finally:
            await registry.aclose()

    assert caught.value.upstream_status == 401
    assert "wrong-key" not in caught.value.message


async def test_fake_anthropic_accepts_the_key_as_x_api_key_or_bearer():
    payload = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with FakeAnthropic(api_key="k") as fake, httpx.AsyncClient(base_url=fake.url) as client:
        by_header = await client.post("/v1/messages", json=payload, headers={"x-api-key": "k"})
        by_bearer = await client.post(
            "/v1/messages", json=payload, headers={"authorization": "Bearer k"}
        )
        missing = await client.post("/v1/messages", json=payload)

    assert (by_header.status_code, by_bearer.status_code, missing.status_code) == (200, 200, 401)
    assert missing.json()["error"]["type"] == "authentication_error"


def test_fake_runs_standalone_from_the_command_line():
    process = subprocess.Popen(
        [sys.executable, "-m", "providers.testing.fakes", "--vendor", "ollama", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        url = banner.split(" listening on ")[1].split()[0]
        tags = httpx.get(f"{url}/api/tags", timeout=5).json()
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert tags["models"][0]["name"] == "llama3.2:latest"
