"""A chat's admin page shows its conversation as a person reads it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chats.models import Chat, Message
from tenants.models import Subtenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat():
    subtenant = Subtenant.objects.create(name="acme")
    chat = Chat.objects.create(subtenant=subtenant, title="Support")
    rows = [
        {"role": "user", "content": "What is (2 + 3) * 4?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_1", "name": "calculator", "arguments": {"expression": "(2 + 3) * 4"}}
            ],
            "provider": "openai",
            "model": "gpt-4o-mini",
            "input_tokens": 49,
            "output_tokens": 1,
            "finish_reason": "tool_calls",
        },
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "name": "calculator",
            "content": "20",
            "metadata": {"is_error": False, "source": "server"},
        },
        {
            "role": "assistant",
            "content": "(2 + 3) * 4 = 20 <b>",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "input_tokens": 50,
            "output_tokens": 13,
            "latency_ms": 530,
            "finish_reason": "stop",
        },
        {"role": "user", "content": "Tell me a long story"},
        {
            "role": "assistant",
            "content": "Once upon",
            "status": "interrupted",
            "error": "The client disconnected.",
            "provider": "anthropic",
            "model": "claude-haiku-4-5",
        },
    ]
    for sequence, row in enumerate(rows, start=1):
        Message.objects.create(chat=chat, sequence=sequence, **row)
    chat.last_sequence = len(rows)
    chat.save()
    return chat


@pytest.fixture
def staff():
    User.objects.create_superuser("root", "root@example.com", "a-long-passphrase")
    browser = Client()
    browser.login(username="root", password="a-long-passphrase")
    return browser


def test_the_chat_page_reads_as_a_conversation_newest_last(chat, staff):
    page = staff.get(f"/admin/chats/chat/{chat.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    transcript = html[html.index('id="transcript"') :]

    roles = re.findall(r'data-role="(\w+)" data-sequence="(\d+)"', transcript)
    # The tool message is shown under the call it answered, not as a row of its own.
    assert roles == [
        ("user", "1"),
        ("assistant", "2"),
        ("assistant", "4"),
        ("user", "5"),
        ("assistant", "6"),
    ]
    call = transcript[transcript.index('data-tool="calculator"') :]
    assert "&quot;expression&quot;: &quot;(2 + 3) * 4&quot;" in call.split("</pre>")[0]
    assert '<pre class="lw-result">20</pre>' in call
    assert "(2 + 3) * 4 = 20 &lt;b&gt;" in transcript  # text is escaped
    assert 'class="lw-status interrupted"' in transcript
    assert "The client disconnected." in transcript
    assert "openai/gpt-4o-mini &middot; 50 in, 13 out tokens &middot; 530 ms" in transcript


def test_a_long_chat_shows_its_newest_messages(chat, staff):
    from chats.admin import transcript

    html = transcript(chat, limit=2)
    assert re.findall(r'data-sequence="(\d+)"', html) == ["5", "6"]
    assert "The newest 2 of 6 messages" in html
    assert staff.get("/admin/chats/chat/add/").status_code == 200
