"""The history window: what of a chat's past is sent to the model."""

import pytest

from chats.history import fit_to_budget
from chats.models import Chat, Message
from conftest import client_for
from providers.core.types import Message as M
from providers.core.types import ToolCall


def test_oldest_units_are_dropped_first_and_the_newest_always_stays():
    history = [M("user", "old " * 400), M("assistant", "reply"), M("user", "new " * 400)]
    kept = fit_to_budget(history, budget_tokens=10)
    assert kept == [history[-1]]
    kept = fit_to_budget(history, budget_tokens=420)
    assert kept == history[1:]


def test_a_tool_call_and_its_results_are_kept_or_dropped_together():
    call = ToolCall("c1", "lookup", {"q": "x" * 200})
    history = [
        M("user", "question"),
        M("assistant", "", tool_calls=(call,)),
        M("tool", "result " * 50, tool_call_id="c1", name="lookup"),
        M("user", "follow-up"),
    ]
    # Room for the follow-up and a little more, not for the whole tool pair.
    kept = fit_to_budget(history, budget_tokens=30)
    assert kept == [history[-1]]
    kept = fit_to_budget(history, budget_tokens=155)
    assert kept == history[1:]


def test_results_without_their_call_and_unanswered_calls_are_removed():
    answered, unanswered = ToolCall("a", "f", {}), ToolCall("b", "f", {})
    history = [
        M("tool", "orphan", tool_call_id="zzz"),
        M("assistant", "thinking", tool_calls=(answered, unanswered)),
        M("tool", "ok", tool_call_id="a"),
        M("user", "next"),
    ]
    kept = fit_to_budget(history, budget_tokens=10_000)
    assert [m.role for m in kept] == ["assistant", "tool", "user"]
    assert kept[0].tool_calls == (answered,)


@pytest.mark.django_db(transaction=True)
def test_truncated_history_keeps_the_system_prompt_and_the_new_message(
    make_tenant, llm_fakes, settings
):
    settings.CHAT_CONTEXT_MAX_TOKENS = 200
    settings.CHAT_HISTORY_MAX_MESSAGES = 20
    subtenant, raw, _ = make_tenant()
    chat = Chat.objects.create(subtenant=subtenant, provider="openai", system_prompt="Be kind.")
    call = {"id": "call_1", "name": "lookup", "arguments": {}}
    rows = []
    for i in range(60):
        rows.append(
            Message(chat=chat, sequence=len(rows) + 1, role="user", content=f"question {i} " * 5)
        )
        rows.append(
            Message(
                chat=chat, sequence=len(rows) + 1, role="assistant", content="", tool_calls=[call]
            )
        )
        rows.append(
            Message(
                chat=chat, sequence=len(rows) + 1, role="tool", content="r", tool_call_id="call_1"
            )
        )
        rows.append(
            Message(chat=chat, sequence=len(rows) + 1, role="assistant", content=f"answer {i}")
        )
    Message.objects.bulk_create(rows)
    Chat.objects.filter(pk=chat.pk).update(last_sequence=len(rows))

    response = client_for(raw).post(
        f"/api/v1/chats/{chat.id}/messages", {"content": "newest"}, format="json"
    )
    assert response.status_code == 200, response.content
    sent = llm_fakes.openai.chat_requests()[-1].body["messages"]
    assert sent[0] == {"role": "system", "content": "Be kind."}
    assert sent[-1]["content"] == "newest"
    assert "question 0 " not in str(sent)
    assert len(sent) < 22
    for index, message in enumerate(sent):
        if message.get("tool_calls"):
            assert sent[index + 1]["role"] == "tool"
        if message["role"] == "tool":
            assert sent[index - 1].get("tool_calls")


@pytest.mark.django_db(transaction=True)
def test_the_window_reaches_past_a_long_run_of_failed_turns(make_tenant, llm_fakes, settings):
    # The newest finished messages are sought among the few sequence numbers below the
    # chat's newest first; when failed turns fill those, further back.
    settings.CHAT_HISTORY_MAX_MESSAGES = 4
    subtenant, raw, _ = make_tenant()
    chat = Chat.objects.create(subtenant=subtenant, provider="openai")
    rows = [
        Message(chat=chat, sequence=n, role="user" if n % 2 else "assistant", content=f"m{n}")
        for n in range(1, 41)
    ]
    rows += [
        Message(chat=chat, sequence=n, role="assistant", content=f"failed {n}", status="error")
        for n in range(41, 61)
    ]
    Message.objects.bulk_create(rows)
    Chat.objects.filter(pk=chat.pk).update(last_sequence=60)

    response = client_for(raw).post(
        f"/api/v1/chats/{chat.id}/messages", {"content": "newest"}, format="json"
    )

    assert response.status_code == 200, response.content
    sent = llm_fakes.openai.chat_requests()[-1].body["messages"]
    assert [m["content"] for m in sent] == ["m38", "m39", "m40", "newest"]
