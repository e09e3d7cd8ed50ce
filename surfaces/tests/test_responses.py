"""The official `openai` SDK's Responses API, unchanged, against the gateway."""

from __future__ import annotations

import openai
import pytest

from chats.models import Chat, Message
from conftest import client_for
from providers.models import LlmCall
from providers.records import wait_idle
from providers.testing.media import PNG, data_uri

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def sdk(make_tenant, live_server_url, llm_fakes):
    subtenant, raw, _ = make_tenant("responses-user")
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=raw, max_retries=0)
    return client, subtenant, raw, llm_fakes


def sent_messages(fake) -> list[dict]:
    return fake.chat_requests()[-1].body["messages"]


def test_create_plain_and_read_back(sdk):
    client, subtenant, raw, fakes = sdk
    fakes.openai.enqueue(text="Hello there.", usage=(7, 3))
    response = client.responses.create(
        model="openai/gpt-4o-mini", input="Hi!", instructions="Be brief.", temperature=0.2
    )
    assert response.status == "completed" and response.output_text == "Hello there."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 3)
    assert sent_messages(fakes.openai) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi!"},
    ]
    assert fakes.openai.chat_requests()[-1].body["temperature"] == 0.2

    # Stored in a new chat of the subtenant: the conversation shows in the chat API.
    chat = Chat.objects.get(subtenant=subtenant)
    assert chat.title == "Hi!" and chat.metadata == {"source": "responses"}
    listed = client_for(raw).get(f"/api/v1/chats/{chat.id}/messages").json()["results"]
    assert [(m["role"], m["content"]) for m in listed] == [
        ("user", "Hi!"),
        ("assistant", "Hello there."),
    ]
    again = client.responses.retrieve(response.id)
    assert again.id == response.id and again.output_text == "Hello there."
    assert again.output[0].id == response.output[0].id
    assert again.usage.total_tokens == 10 and again.instructions == "Be brief."
    wait_idle()
    assert LlmCall.objects.get(subtenant=subtenant).source == "responses"


def test_previous_response_id_continues_the_conversation(sdk):
    client, subtenant, raw, fakes = sdk
    fakes.openai.enqueue(text="Paris.")
    first = client.responses.create(model="openai/gpt-4o-mini", input="Capital of France?")
    fakes.openai.enqueue(text="About 2 million.")
    second = client.responses.create(
        model="openai/gpt-4o-mini", input="Its population?", previous_response_id=first.id
    )
    assert second.output_text == "About 2 million." and second.previous_response_id == first.id
    assert sent_messages(fakes.openai) == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Its population?"},
    ]
    [chat] = Chat.objects.filter(subtenant=subtenant)
    listed = client_for(raw).get(f"/api/v1/chats/{chat.id}/messages").json()["results"]
    assert [m["content"] for m in listed] == [
        "Capital of France?",
        "Paris.",
        "Its population?",
        "About 2 million.",
    ]
    assert client.responses.retrieve(first.id).output_text == "Paris."


def test_function_call_round_trip(sdk):
    client, _, _, fakes = sdk
    fakes.openai.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])
    first = client.responses.create(
        model="openai/gpt-4o-mini", input="Weather in Rome?", tools=[WEATHER]
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert (call.name, call.arguments) == ("get_weather", '{"city":"Rome"}')
    fakes.openai.enqueue(text="Sunny in Rome.")
    second = client.responses.create(
        model="openai/gpt-4o-mini",
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert second.output_text == "Sunny in Rome."
    sent = sent_messages(fakes.openai)
    assert sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}
    assert fakes.openai.chat_requests()[-1].body["tools"][0]["function"]["name"] == "get_weather"


def test_the_client_may_send_the_whole_conversation_itself(sdk):
    client, _, _, fakes = sdk
    fakes.openai.enqueue(text="Done.")
    client.responses.create(
        model="openai/gpt-4o-mini",
        store=False,
        input=[
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "rain"},
        ],
        tools=[WEATHER],
    )
    sent = sent_messages(fakes.openai)
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[3] == {"role": "tool", "tool_call_id": "c1", "content": "rain"}
    assert not Chat.objects.exists()


def test_streaming_events_and_the_stream_helper(sdk):
    client, _, _, fakes = sdk
    fakes.openai.enqueue(text="one two three", chunks=3, usage=(2, 3))
    events = list(client.responses.create(model="openai/gpt-4o-mini", input="Count", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds and "response.output_item.done" in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == (
        "one two three"
    )
    assert events[-1].response.usage.total_tokens == 5

    fakes.openai.enqueue(text="Rome.", chunks=2)
    fakes.openai.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    with client.responses.stream(model="openai/gpt-4o-mini", input="Where?") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == "Rome." and final.output_text == "Rome."
    with client.responses.stream(
        model="openai/gpt-4o-mini", input="Weather?", tools=[WEATHER]
    ) as stream:
        final = stream.get_final_response()
    [call] = final.output
    assert (call.type, call.arguments) == ("function_call", '{"city":"Oslo"}')
    # The stored response reads back with the ids the stream used.
    assert client.responses.retrieve(final.id).output[0].id == call.id


def test_another_provider_behind_it_and_an_image(sdk):
    client, _, _, fakes = sdk
    fakes.anthropic.enqueue(text="A red pixel.")
    response = client.responses.create(
        model="anthropic/claude-sonnet-5",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": data_uri(PNG, "image/png")},
                ],
            }
        ],
        max_output_tokens=50,
    )
    assert response.output_text == "A red pixel."
    body = fakes.anthropic.chat_requests()[-1].body
    assert body["max_tokens"] == 50
    assert [b["type"] for b in body["messages"][0]["content"]] == ["text", "image"]


def test_store_false_keeps_nothing(sdk):
    client, _, _, fakes = sdk
    fakes.openai.enqueue(text="Not kept.")
    response = client.responses.create(model="openai/gpt-4o-mini", input="Hi", store=False)
    assert response.output_text == "Not kept."
    assert not Chat.objects.exists()
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_delete_and_other_tenants(sdk, make_tenant, live_server_url):
    client, _, _, fakes = sdk
    fakes.openai.enqueue(text="Secret.")
    response = client.responses.create(model="openai/gpt-4o-mini", input="Hi")
    _, other_raw, _ = make_tenant("someone-else")
    other = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=other_raw, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(
            model="openai/gpt-4o-mini", input="More", previous_response_id=response.id
        )
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(response.id)
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    assert list(Message.objects.values_list("role", flat=True)) == ["user"]
    assert len(fakes.openai.chat_requests()) == 1


def test_bad_requests_are_the_sdks_own_errors_and_store_nothing(sdk):
    client, _, _, fakes = sdk
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="openai/gpt-4o-mini", input=[{"type": "item_reference", "id": "x"}]
        )
    assert caught.value.param == "input[0]"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="openai/gpt-4o-mini", input="Hi", tools=[{"type": "web_search"}]
        )
    assert caught.value.param == "tools[0]"
    fakes.openai.enqueue(status=429, error_message="slow down", retry_after=1)
    fakes.openai.enqueue(status=429, error_message="slow down", retry_after=1)
    fakes.openai.enqueue(status=429, error_message="slow down", retry_after=1)
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="openai/gpt-4o-mini", input="Hi", stream=True)
    # Nothing was stored for the refusals; the rate-limited turn ended as an error.
    assert list(Message.objects.values_list("role", "status")) == [
        ("user", "complete"),
        ("assistant", "error"),
    ]
