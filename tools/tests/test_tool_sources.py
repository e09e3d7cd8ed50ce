"""A tool source registered through the protocol is offered to the model and called."""

from collections.abc import Sequence
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from chats.models import Chat, Message
from conftest import async_client_for, read_sse
from providers.core.types import ToolCall
from tools import registry
from tools.executor import executor_for
from tools.sources import SourceOutcome, SourceTool, ToolSource, catalog_cache

pytestmark = pytest.mark.django_db(transaction=True)


class EchoSource(ToolSource):
    """A source of one tool that answers with its arguments, per subtenant."""

    name = "echo"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.listed = 0
        self.tool_name = "echo"

    def list_tools(self, *, subtenant) -> Sequence[SourceTool]:
        self.listed += 1
        schema = {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        }
        return [SourceTool(self.tool_name, "Repeat the text.", schema, self.name, target="x")]

    async def call(self, tool: SourceTool, arguments: dict[str, Any]) -> SourceOutcome:
        self.calls.append((tool.name, arguments))
        if arguments.get("text") == "fail":
            return SourceOutcome("echo_refused: no", is_error=True, failure="echo_refused")
        return SourceOutcome(f"echo: {arguments['text']}")


@pytest.fixture
def echo_source(monkeypatch):
    source = EchoSource()
    monkeypatch.setattr(registry, "SOURCES", [*registry.SOURCES, source])
    yield source
    catalog_cache.clear()


async def test_a_registered_source_is_offered_and_called_in_a_chat_turn(
    make_tenant, llm_fakes, echo_source
):
    subtenant, raw, _ = await sync_to_async(make_tenant)("echoes")
    chat = await Chat.objects.acreate(subtenant=subtenant, provider="openai")
    llm_fakes.openai.enqueue(tool_calls=[{"name": "echo", "arguments": {"text": "hello"}}])
    llm_fakes.openai.enqueue(text="It said hello.")
    response = await async_client_for(raw).post(
        f"/api/v1/chats/{chat.id}/messages/stream",
        {"content": "echo hello"},
        content_type="application/json",
    )
    events = await read_sse(response)
    results = [data for name, data in events if name == "tool_result"]
    assert [(r["name"], r["content"], r["is_error"]) for r in results] == [
        ("echo", "echo: hello", False)
    ]
    assert events[-1][0] == "message.completed"
    assert echo_source.calls == [("echo", {"text": "hello"})]

    first, second = llm_fakes.openai.chat_requests()
    offered = {t["function"]["name"]: t["function"] for t in first.body["tools"]}
    assert {"calculator", "get_current_time", "echo"} <= set(offered)
    assert offered["echo"]["description"] == "Repeat the text."
    assert offered["echo"]["parameters"]["required"] == ["text"]
    assert second.body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": second.body["messages"][-2]["tool_calls"][0]["id"],
        "content": "echo: hello",
    }
    tool = await Message.objects.aget(chat=chat, role="tool")
    assert tool.name == "echo" and tool.content == "echo: hello"


async def test_a_source_error_outcome_reaches_the_model_as_an_error_result(
    make_tenant, echo_source
):
    subtenant, _, _ = await sync_to_async(make_tenant)("errors")
    tools = await executor_for(subtenant=subtenant, selection=["echo"])
    assert [spec.name for spec in tools.specs()] == ["echo"]
    assert tools.handles("echo") and not tools.handles("calculator")
    outcome = await tools.execute(ToolCall(id="c1", name="echo", arguments={"text": "fail"}))
    assert outcome.is_error and outcome.content == "echo_refused: no"
    bad_json = await tools.execute(
        ToolCall(id="c2", name="echo", arguments={"_raw_arguments": "{"})
    )
    assert bad_json.is_error and echo_source.calls == [("echo", {"text": "fail"})]


async def test_a_source_invalidating_its_tools_offers_the_new_list_at_once(
    make_tenant, echo_source, settings
):
    settings.TOOL_CATALOG_CACHE_SECONDS = 60
    subtenant, _, _ = await sync_to_async(make_tenant)("changes")
    other, _, _ = await sync_to_async(make_tenant)("others")
    await executor_for(subtenant=subtenant, selection=None)
    await executor_for(subtenant=other, selection=None)
    assert echo_source.listed == 2
    echo_source.tool_name = "echo_v2"
    still = await executor_for(subtenant=subtenant, selection=None)
    assert still.handles("echo") and echo_source.listed == 2  # cached

    echo_source.invalidate(subtenant_id=subtenant.pk)
    renewed = await executor_for(subtenant=subtenant, selection=None)
    assert renewed.handles("echo_v2") and not renewed.handles("echo")
    assert (await executor_for(subtenant=other, selection=None)).handles("echo")

    echo_source.invalidate(subtenant_id=None)  # a global change reaches every subtenant
    assert (await executor_for(subtenant=other, selection=None)).handles("echo_v2")
    assert (await executor_for(subtenant=subtenant, selection=None)).handles("calculator")


async def test_a_registered_function_is_offered_at_once_despite_the_cache(
    make_tenant, llm_fakes, webhook, settings
):
    settings.TOOL_CATALOG_CACHE_SECONDS = 60
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    subtenant, raw, _ = await sync_to_async(make_tenant)("hooks")
    client = async_client_for(raw)
    assert not (await executor_for(subtenant=subtenant, selection=None)).handles("lookup")
    created = await client.post(
        "/api/v1/functions/register",
        {"name": "lookup", "url": webhook.url, "parameters": []},
        content_type="application/json",
    )
    assert created.status_code == 201, created.json()
    tools = await executor_for(subtenant=subtenant, selection=None)
    assert tools.handles("lookup")
    outcome = await tools.execute(ToolCall(id="c1", name="lookup", arguments={}))
    assert not outcome.is_error and webhook.requests[-1]["body"]["name"] == "lookup"
    deleted = await client.delete("/api/v1/functions/lookup")
    assert deleted.status_code == 204
    assert not (await executor_for(subtenant=subtenant, selection=None)).handles("lookup")
