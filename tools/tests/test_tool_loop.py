"""The tool loop in chats and direct calls, with a fake model that asks for tools."""

import pytest
from asgiref.sync import sync_to_async

from chats.models import Chat, Message
from conftest import async_client_for, read_sse

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chat_setup(make_tenant, llm_fakes):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, provider="openai")
    return chat, async_client_for(raw), llm_fakes


async def post(client, path, body):
    return await client.post(path, body, content_type="application/json")


def two_tools():
    return [
        {"name": "calculator", "arguments": {"expression": "15 * 23"}},
        {"name": "get_current_time", "arguments": {"timezone": "Europe/Paris"}},
    ]


async def test_model_calls_two_tools_in_one_turn_then_answers(chat_setup):
    chat, client, fakes = chat_setup
    fakes.openai.enqueue(tool_calls=two_tools())
    fakes.openai.enqueue(text="15 * 23 is 345.")
    response = await post(
        client, f"/api/v1/chats/{chat.id}/messages/stream", {"content": "Time and 15*23?"}
    )
    events = await read_sse(response)
    names = [name for name, _ in events]
    assert names.count("tool_call") == 2 and names.count("tool_result") == 2
    assert names[-1] == "message.completed"
    results = {d["name"]: d for n, d in events if n == "tool_result"}
    assert results["calculator"]["content"] == "345" and not results["calculator"]["is_error"]
    assert "Europe/Paris" in results["get_current_time"]["content"]

    stored = [
        (m.sequence, m.role, m.name)
        async for m in Message.objects.filter(chat=chat).order_by("sequence")
    ]
    assert [(role, name) for _, role, name in stored] == [
        ("user", ""),
        ("assistant", ""),
        ("tool", "calculator"),
        ("tool", "get_current_time"),
        ("assistant", ""),
    ]
    assert [s for s, _, _ in stored] == [1, 2, 3, 4, 5]

    # The second model call saw both results, paired with their calls.
    second = fakes.openai.chat_requests()[-1].body["messages"]
    assert [m["role"] for m in second[-3:]] == ["assistant", "tool", "tool"]
    assert {m["content"] for m in second[-2:]} >= {"345"}
    # Built-ins were offered to the model by default.
    offered = {t["function"]["name"] for t in fakes.openai.chat_requests()[0].body["tools"]}
    assert {"calculator", "get_current_time"} <= offered


async def test_failing_tool_returns_an_error_result_to_the_model(chat_setup):
    chat, client, fakes = chat_setup
    fakes.openai.enqueue(
        tool_calls=[{"name": "calculator", "arguments": {"expression": "__import__('os')"}}]
    )
    fakes.openai.enqueue(text="I could not compute that.")
    response = await post(client, f"/api/v1/chats/{chat.id}/messages", {"content": "hack"})
    assert response.status_code == 200
    tool = await Message.objects.aget(chat=chat, role="tool")
    assert tool.metadata["is_error"] is True
    assert "tool_input_error" in tool.content
    assert response.json()["message"]["content"] == "I could not compute that."


async def test_loop_stops_after_the_configured_rounds(chat_setup, settings):
    chat, client, fakes = chat_setup
    settings.TOOL_MAX_ROUNDS = 3
    for _ in range(5):
        fakes.openai.enqueue(
            tool_calls=[{"name": "calculator", "arguments": {"expression": "1+1"}}]
        )
    response = await post(client, f"/api/v1/chats/{chat.id}/messages", {"content": "loop"})
    body = response.json()
    assert body["round_limit_reached"] is True
    assert body["finish_reason"] == "tool_calls"
    assert len(fakes.openai.chat_requests()) == 3
    assert await Message.objects.filter(chat=chat, role="tool").acount() == 3


async def test_server_tools_can_be_narrowed_or_switched_off(chat_setup):
    chat, client, fakes = chat_setup
    await post(client, f"/api/v1/chats/{chat.id}/messages", {"content": "a", "server_tools": False})
    assert "tools" not in fakes.openai.chat_requests()[-1].body
    await post(
        client,
        f"/api/v1/chats/{chat.id}/messages",
        {"content": "b", "server_tools": ["calculator"]},
    )
    offered = [t["function"]["name"] for t in fakes.openai.chat_requests()[-1].body["tools"]]
    assert offered == ["calculator"]


async def test_client_tools_are_returned_while_server_tools_run(chat_setup):
    chat, client, fakes = chat_setup
    client_tool = {
        "type": "function",
        "function": {"name": "open_door", "parameters": {"type": "object"}},
    }
    fakes.openai.enqueue(
        tool_calls=[
            {"name": "calculator", "arguments": {"expression": "2+2"}},
            {"name": "open_door", "arguments": {"door": "front"}},
        ]
    )
    body = (
        await post(
            client, f"/api/v1/chats/{chat.id}/messages", {"content": "go", "tools": [client_tool]}
        )
    ).json()
    assert body["finish_reason"] == "tool_calls"
    assert [c["name"] for c in body["tool_calls"]] == ["open_door"]
    assert [m["role"] for m in body["messages"]] == ["assistant", "tool"]
    pending = body["tool_calls"][0]
    fakes.openai.enqueue(text="Door open, and 2+2=4.")
    done = await post(
        client,
        f"/api/v1/chats/{chat.id}/messages",
        {
            "tool_results": [{"tool_call_id": pending["id"], "content": "opened"}],
            "tools": [client_tool],
        },
    )
    assert done.json()["message"]["content"] == "Door open, and 2+2=4."
    sent = fakes.openai.chat_requests()[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]


async def test_direct_call_runs_server_tools_too(make_tenant, llm_fakes):
    _, raw, _ = await sync_to_async(make_tenant)("direct")
    client = async_client_for(raw)
    llm_fakes.anthropic.enqueue(
        tool_calls=[{"name": "calculator", "arguments": {"expression": "6*7"}}]
    )
    llm_fakes.anthropic.enqueue(text="42")
    response = await post(
        client,
        "/api/v1/llm/complete",
        {"provider": "anthropic", "messages": [{"role": "user", "content": "6*7?"}]},
    )
    body = response.json()
    assert body["message"]["content"] == "42"
    assert body["tool_results"][0]["content"] == "42" and body["rounds"] == 2
    received = str(llm_fakes.anthropic.chat_requests()[-1].body)
    assert "tool_result" in received and "42" in received
