"""The official `openai` SDK, unchanged, against the gateway's OpenAI-compatible API."""

import json

import openai
import pytest

from chats.models import Chat, Message
from providers.models import LlmCall
from providers.records import wait_idle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sdk(make_tenant, live_server_url, llm_fakes):
    subtenant, raw, _ = make_tenant("sdk-user")
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=raw, max_retries=0)
    # The server now remembers the key: completions take the hot lane (llmwrapper/lane.py).
    client.models.list()
    return client, subtenant, llm_fakes


def test_completion(sdk):
    client, subtenant, fakes = sdk
    fakes.openai.enqueue(text="Hello from upstream", usage=(5, 3))
    completion = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "Hi"}],
        temperature=0.5,
        max_completion_tokens=64,
        stop=["END"],
        n=1,
    )
    assert completion.choices[0].message.content == "Hello from upstream"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 5 and completion.usage.completion_tokens == 3
    assert completion.model == "openai/gpt-4o-mini"
    sent = fakes.openai.chat_requests()[-1].body
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0.5 and sent["stop"] == ["END"]
    wait_idle()  # call records are stored in the background
    call = LlmCall.objects.get(subtenant=subtenant)
    assert (call.source, call.input_tokens, call.output_tokens) == ("openai_compat", 5, 3)


def test_streaming_with_usage(sdk):
    client, _, fakes = sdk
    fakes.openai.enqueue(text="one two three four", chunks=4, usage=(2, 4))
    stream = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.total_tokens == 6


def test_tool_call_round_trip(sdk):
    client, _, fakes = sdk
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    fakes.openai.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])
    first = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Weather?"}], tools=tools
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "city": "Rome"
    }
    # Only the client's tools were offered: server-side tools are opt-in on this API.
    assert [t["function"]["name"] for t in fakes.openai.chat_requests()[-1].body["tools"]] == [
        "get_weather"
    ]

    fakes.openai.enqueue(text="Sunny in Rome.")
    second = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        tools=tools,
        messages=[
            {"role": "user", "content": "Weather?"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert second.choices[0].message.content == "Sunny in Rome."
    sent = fakes.openai.chat_requests()[-1].body["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}


def test_streamed_tool_calls(sdk):
    client, _, fakes = sdk
    fakes.openai.enqueue(tool_calls=[{"name": "lookup", "arguments": {"q": "x"}}])
    stream = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "?"}],
        tools=[
            {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
        ],
        stream=True,
    )
    chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "lookup" and json.loads(calls[0].function.arguments) == {
        "q": "x"
    }
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_bad_model_raises_the_sdks_not_found_error(sdk):
    client, _, fakes = sdk
    fakes.openai.enqueue(status=404, error_message="The model `gpt-9` does not exist")
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(
            model="openai/gpt-9", messages=[{"role": "user", "content": "x"}]
        )
    assert raised.value.body["code"] == "model_not_found"


def test_bad_key_and_bad_request_raise_the_sdks_errors(sdk, live_server_url):
    client, _, _ = sdk
    bad = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key="lw_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=[], temperature=9)


def test_anthropic_model_through_provider_prefix(sdk):
    client, _, fakes = sdk
    fakes.anthropic.enqueue(text="Claude says hi", usage=(4, 3))
    completion = client.chat.completions.create(
        model="anthropic/claude-sonnet-5",
        messages=[{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"}],
        max_tokens=50,
    )
    assert completion.choices[0].message.content == "Claude says hi"
    sent = fakes.anthropic.chat_requests()[-1].body
    assert sent["model"] == "claude-sonnet-5" and sent["system"] and sent["max_tokens"] == 50

    fakes.anthropic.enqueue(text="streamed claude", chunks=2)
    stream = client.chat.completions.create(
        model="anthropic/claude-sonnet-5",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed claude"
    )
    assert chunks[-1].usage is not None


def test_aliases_route_bare_model_names(sdk, settings):
    client, _, fakes = sdk
    settings.MODEL_ALIASES = {"smart": "anthropic/claude-opus-5"}
    client.chat.completions.create(model="smart", messages=[{"role": "user", "content": "x"}])
    assert fakes.anthropic.chat_requests()[-1].body["model"] == "claude-opus-5"
    models = [m.id for m in client.models.list()]
    assert "smart" in models and any(m.startswith("openai/") for m in models)


def test_chat_id_header_persists_the_exchange(sdk):
    client, subtenant, fakes = sdk
    chat = Chat.objects.create(subtenant=subtenant)
    fakes.openai.enqueue(text="kept")
    client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "remember me"}],
        extra_headers={"X-Chat-ID": str(chat.id)},
    )
    stored = list(
        Message.objects.filter(chat=chat).order_by("sequence").values_list("role", "content")
    )
    assert stored == [("user", "remember me"), ("assistant", "kept")]
    other = Chat.objects.create(
        subtenant=Chat.objects.get(pk=chat.pk).subtenant.__class__.objects.create(name="x")
    )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "sneaky"}],
            extra_headers={"X-Chat-ID": str(other.id)},
        )
    assert not Message.objects.filter(chat=other).exists()


def test_models_retrieve(sdk, settings):
    client, _, _ = sdk
    settings.MODEL_ALIASES = {"fast": "openai/gpt-4o-mini"}
    listed = [m.id for m in client.models.list()]
    some = next(m for m in listed if m.startswith("openai/"))
    model = client.models.retrieve(some)
    assert (model.id, model.owned_by) == (some, "openai")
    assert client.models.retrieve("fast").owned_by == "alias"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("openai/no-such-model")
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nowhere/x")


def test_unknown_paths_and_methods_under_v1_answer_in_openai_shape(sdk, live_server_url):
    client, _, _ = sdk
    with pytest.raises(openai.NotFoundError) as caught:
        client.get("/nothing/here", cast_to=object)
    assert caught.value.body["message"].startswith("Invalid URL (GET /v1/nothing/here)")
    with pytest.raises(openai.APIStatusError) as caught:
        client.delete("/chat/completions", cast_to=object)
    assert caught.value.status_code == 405
    assert caught.value.body["type"] == "invalid_request_error"
