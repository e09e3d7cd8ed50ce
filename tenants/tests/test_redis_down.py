"""Redis going away and coming back, with a real Redis server the test starts and kills:
limits fail open to per-process counting (never a 500), /health says Redis is down,
and once Redis is back the shared limits hold again."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chats.models import Chat

pytestmark = [
    pytest.mark.django_db(transaction=True),
]


def unavailable_count(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "llmwrapper_rate_limit_unavailable_total":
                return sample.value
    return 0.0


def test_limits_fail_open_while_redis_is_down_and_hold_again_after(
    make_tenant, app_process, throwaway_redis, llm_fakes
):
    subtenant, raw, _ = make_tenant("limited", rate_limit_rpm=3)
    base = app_process(
        REDIS_URL=throwaway_redis.url,
        OPENAI_BASE_URL=llm_fakes.openai.base_url,
        OPENAI_API_KEY="sk-test-openai",
        METRICS_TOKEN="",
        METRICS_ALLOWED_IPS="127.0.0.1",
    )
    auth = {"Authorization": f"Bearer {raw}"}

    def get() -> int:
        url = f"{base}/api/v1/subtenants/{subtenant.id}"
        return httpx.get(url, headers=auth, timeout=10).status_code

    # Redis up: the shared counter limits.
    assert [get() for _ in range(4)] == [200, 200, 200, 429]
    assert httpx.get(f"{base}/health", timeout=10).json()["checks"]["redis"]["status"] == "ok"

    throwaway_redis.kill()
    # Redis down: the process counts alone, so the limit still holds per process.
    assert [get() for _ in range(4)] == [200, 200, 200, 429]
    assert unavailable_count(base) >= 4
    health = httpx.get(f"{base}/health", timeout=10)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"

    # Calls that check and record tokens work too (the minute's requests are used up,
    # so another subtenant's key runs them).
    other, other_raw, _ = make_tenant("tokens", rate_limit_tpm=10_000)
    other_chat = Chat.objects.create(subtenant=other, provider="openai")
    other_auth = {"Authorization": f"Bearer {other_raw}"}
    direct = httpx.post(
        f"{base}/api/v1/llm/complete",
        json={"provider": "openai", "messages": [{"role": "user", "content": "hi"}]},
        headers=other_auth,
        timeout=20,
    )
    assert direct.status_code == 200, direct.text
    sent = httpx.post(
        f"{base}/api/v1/chats/{other_chat.id}/messages",
        json={"content": "hi"},
        headers=other_auth,
        timeout=20,
    )
    assert sent.status_code == 200, sent.text

    throwaway_redis.start()  # the same port, empty
    deadline = time.monotonic() + 15
    while httpx.get(f"{base}/health", timeout=10).json()["status"] != "ok":
        assert time.monotonic() < deadline, "health did not see Redis come back"
        time.sleep(0.2)
    time.sleep(1.2)  # past the pause after the last failed attempt (REDIS_RETRY_SECONDS)
    # Redis back: the shared counter limits again, from its own (empty) count.
    assert [get() for _ in range(4)] == [200, 200, 200, 429]
    before = unavailable_count(base)
    get()
    assert unavailable_count(base) == before
