"""Normalized types, tool definitions and the error shape."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator

import pytest

from providers.core.errors import (
    ProviderStreamInterruptedError,
    ProviderTimeoutError,
    ProviderUpstreamError,
    error_from_status,
    parse_retry_after,
    redact,
)
from providers.core.tooling import forced_tool_name, parse_arguments, tool_specs_from_openai
from providers.core.types import (
    Finished,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallComplete,
    ToolSpec,
    Usage,
    UsageEvent,
    collect,
)


async def _events(*events: StreamEvent) -> AsyncIterator[StreamEvent]:
    for event in events:
        yield event


def test_tool_specs_accept_tools_and_legacy_functions():
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    specs = tool_specs_from_openai(
        [
            {
                "type": "function",
                "function": {"name": "search", "description": "Find", "parameters": schema},
            }
        ],
        [{"name": "now"}],
    )

    assert specs == (
        ToolSpec("search", "Find", schema),
        ToolSpec("now", "", {"type": "object", "properties": {}}),
    )
    assert tool_specs_from_openai(None, None) == ()


def test_tool_specs_reject_non_function_tools():
    with pytest.raises(ValueError, match="code_interpreter"):
        tool_specs_from_openai([{"type": "code_interpreter"}], None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"city": "Paris"}', {"city": "Paris"}),
        ({"already": "parsed"}, {"already": "parsed"}),
        ("", {}),
        (None, {}),
        ('{"city": "Par', {"_raw_arguments": '{"city": "Par'}),
        ("[1, 2]", {"_raw_arguments": "[1, 2]"}),
    ],
)
def test_tool_arguments_are_always_a_dict(raw, expected):
    assert parse_arguments(raw) == expected


def test_forced_tool_name_understands_every_tool_choice_shape():
    assert forced_tool_name({"type": "function", "function": {"name": "a"}}) == "a"
    assert forced_tool_name({"type": "tool", "name": "b"}) == "b"
    assert forced_tool_name("c") == "c"
    assert [forced_tool_name(x) for x in ("auto", "none", "required", None)] == [None] * 4


async def test_collect_folds_a_stream_into_a_result():
    call = ToolCall("call_1", "search", {"q": "x"})
    result = await collect(
        _events(
            TextDelta("Hel"),
            TextDelta("lo"),
            ToolCallComplete(call),
            UsageEvent(Usage(5, 2)),
            Finished("tool_calls"),
        ),
        provider="openai",
        model="gpt-4o-mini",
    )

    assert (result.text, result.tool_calls, result.usage) == ("Hello", (call,), Usage(5, 2))
    assert (result.finish_reason, result.provider, result.model) == (
        "tool_calls",
        "openai",
        "gpt-4o-mini",
    )
    assert result.to_message().tool_calls == (call,)


async def test_collect_refuses_a_stream_that_never_finished():
    with pytest.raises(ProviderStreamInterruptedError):
        await collect(_events(TextDelta("partial")), provider="p", model="m")


def test_usage_adds_up_across_calls():
    assert Usage(3, 4) + Usage(1, 1) == Usage(4, 5)
    assert (Usage(3, 4) + Usage(1, 1)).total_tokens == 9


def test_usage_gives_the_fields_of_a_call_record():
    assert Usage(3, 4).record_fields() == {"input_tokens": 3, "output_tokens": 4}


def test_error_dict_has_the_shared_shape_with_provider_details():
    error = error_from_status(429, "slow down", provider="openai", retry_after=2.0)

    assert error.to_dict() == {
        "type": "provider_rate_limited",
        "message": "slow down",
        "details": {"provider": "openai", "upstream_status": 429, "retry_after": 2.0},
    }
    assert (error.status, error.retryable) == (429, True)
    assert error.headers == {"Retry-After": "2"}


@pytest.mark.parametrize(
    ("status", "our_status", "retryable"),
    [
        (400, 400, False),
        (401, 502, False),
        (403, 502, False),
        (404, 400, False),
        (408, 502, True),
        (422, 400, False),
        (429, 429, True),
        (500, 502, True),
        (503, 502, True),
        (529, 502, True),
    ],
)
def test_vendor_statuses_map_to_gateway_statuses(status, our_status, retryable):
    error = error_from_status(status, "x", provider="p")

    assert (error.status, error.upstream_status, error.retryable) == (our_status, status, retryable)


def test_timeouts_are_504_and_upstream_errors_502():
    assert ProviderTimeoutError("t", provider="p").status == 504
    assert ProviderUpstreamError("u", provider="p").status == 502


def test_keys_echoed_by_a_vendor_are_redacted():
    assert redact("Incorrect API key provided: sk-abc123", "sk-abc123") == (
        "Incorrect API key provided: ***"
    )
    assert redact("nothing to hide", None) == "nothing to hide"


def test_retry_after_understands_seconds_milliseconds_and_dates():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after({"retry-after": future}) <= 31
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
