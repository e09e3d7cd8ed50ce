"""`llmwrapper.api.validated` answers exactly as a fresh serializer's `is_valid` does,
for valid and refused bodies alike, and keeps nothing of one body for the next."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from chats.serializers import SendMessageSerializer
from llmwrapper.api import validated
from surfaces.anthropic.wire import MessagesRequestSerializer
from surfaces.embeddings import OpenAIEmbeddingsSerializer
from surfaces.llm.api import CompletionRequestSerializer
from surfaces.openai_chat import ChatCompletionSerializer
from surfaces.responses.api import ResponseRequestSerializer

TOOL = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
CHAT = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]
BODIES = [
    (ChatCompletionSerializer, {"model": "openai/m", "messages": CHAT}),
    (
        ChatCompletionSerializer,
        {
            "model": "  openai/m ",
            "messages": [
                *CHAT,
                {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "add"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "3"},
            ],
            "stream": True,
            "temperature": 1,
            "stop": ["x"],
            "tools": [TOOL],
            "logprobs": True,
        },
    ),
    (ChatCompletionSerializer, {"model": "openai/m", "messages": []}),
    (ChatCompletionSerializer, {"model": "", "messages": CHAT, "temperature": 3}),
    (ChatCompletionSerializer, {"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
    (ChatCompletionSerializer, {"model": "m", "messages": [{"role": "user", "extra": 1}]}),
    (ChatCompletionSerializer, ["not", "an", "object"]),
    (CompletionRequestSerializer, {"messages": CHAT, "max_tokens": 5, "provider": "openai"}),
    (CompletionRequestSerializer, {"messages": CHAT, "unknown": 1}),
    (SendMessageSerializer, {"content": "Hello", "tools": [TOOL]}),
    (SendMessageSerializer, {"content": 5, "max_tokens": 0}),
    (MessagesRequestSerializer, {"model": "m", "max_tokens": 10, "messages": CHAT[1:]}),
    (MessagesRequestSerializer, {"model": "m", "messages": CHAT[1:]}),
    (ResponseRequestSerializer, {"model": "m", "input": "Hi", "instructions": "Be terse."}),
    (OpenAIEmbeddingsSerializer, {"model": "m", "input": ["a", "b"]}),
    (OpenAIEmbeddingsSerializer, {"model": "m", "input": []}),
]


def _fresh(serializer_class, data):
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return "valid", serializer.validated_data
    return "invalid", serializer.errors


def _kept(serializer_class, data):
    try:
        return "valid", validated(serializer_class, data)
    except serializers.ValidationError as exc:
        return "invalid", exc.detail


@pytest.mark.parametrize(("serializer_class", "data"), BODIES)
def test_validated_answers_as_a_fresh_serializer(serializer_class, data):
    assert _kept(serializer_class, data) == _fresh(serializer_class, data)


def test_the_bodies_cover_both_outcomes():
    outcomes = {_fresh(serializer_class, data)[0] for serializer_class, data in BODIES}
    assert outcomes == {"valid", "invalid"}


def test_one_body_leaves_nothing_for_the_next():
    for serializer_class, data in BODIES * 2:
        assert _kept(serializer_class, data) == _fresh(serializer_class, data)
