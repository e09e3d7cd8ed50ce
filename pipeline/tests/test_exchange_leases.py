"""`/v1/chat/completions` with `X-Chat-ID` persists like a chat send: the user message
and a `streaming` answer are stored when the turn starts, the text so far is saved as
it streams, and a worker that dies leaves an answer the sweeper ends `interrupted`."""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest

from chats import leases
from chats.models import Chat
from chats.tests.test_leases import _messages
from providers.testing import FakeOpenAI

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = "one two three four five six seven eight"


def _content(line: str) -> str:
    if not line.startswith("data: {"):
        return ""
    choices = json.loads(line[6:]).get("choices") or [{}]
    return choices[0].get("delta", {}).get("content") or ""


def test_a_killed_worker_leaves_the_exchange_interrupted_with_its_text(app_process, make_tenant):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant)
    with FakeOpenAI() as fake:
        env = {
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": fake.base_url,
            "PROVIDER_MAX_RETRIES": "0",
            "CHAT_LEASE_SECONDS": "1.5",
            "CHAT_PARTIAL_SAVE_SECONDS": "0.1",
        }
        doomed, survivor = app_process(**env), app_process(**env)
        fake.enqueue(text=WORDS, chunks=8, chunk_delay=0.4)
        headers = {"Authorization": f"Bearer {raw}", "X-Chat-ID": str(chat.id)}
        body = {
            "model": "openai/gpt-4o-mini",
            "stream": True,
            "messages": [{"role": "user", "content": "count for me"}],
        }
        received = ""
        with httpx.stream(
            "POST", f"{doomed}/v1/chat/completions", json=body, headers=headers, timeout=10
        ) as stream:
            lines = stream.iter_lines()  # kept referenced: see chats/tests/test_leases.py
            while len(received) < len("one two thr"):
                received += _content(next(lines))
            # While it streams, the chat already holds the question and the answer so far.
            time.sleep(0.3)
            during = _messages(survivor, chat, raw)
            app_process.processes[doomed].send_signal(signal.SIGKILL)
            app_process.processes[doomed].wait(5)

        assert [(m["role"], m["status"]) for m in during] == [
            ("user", "complete"),
            ("assistant", "streaming"),
        ]
        assert during[1]["content"] and WORDS.startswith(during[1]["content"])

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            stored = _messages(survivor, chat, raw)
            if stored[-1]["status"] != "streaming":
                break
            time.sleep(0.2)
        user, assistant = stored
        assert (user["role"], user["content"]) == ("user", "count for me")
        assert assistant["status"] == "interrupted"
        assert assistant["error"] == leases.INTERRUPTED_BY_SWEEP
        assert len(assistant["content"]) >= len(received) and WORDS.startswith(assistant["content"])
