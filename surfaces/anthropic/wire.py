"""Anthropic Messages requests as normalized messages, tools and generation params."""

from __future__ import annotations

import json
import math
from typing import Any

from rest_framework import serializers

import pipeline
from chats.history import DOCUMENT_BYTES_PER_TOKEN, IMAGE_TOKENS
from providers import gateway
from providers.core.content import (
    ContentError,
    ContentLimits,
    DocumentPart,
    ImagePart,
    parse_content,
)
from providers.core.registry import ProviderRegistry
from providers.core.types import Message, ToolCall, ToolSpec

# The model's thinking in an assistant turn sent back: not passed on (the gateway does
# not return thinking blocks either).
_DROPPED_BLOCKS = ("thinking", "redacted_thinking")
# Request fields only Anthropic's API has: sent to an Anthropic model as they are.
_ANTHROPIC_ONLY = ("top_k", "thinking")


class MessageParamSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["user", "assistant"])
    content = serializers.JSONField(
        help_text="Text, or content blocks: text, image, document, tool_use, tool_result."
    )

    def validate_content(self, value: Any) -> Any:
        if isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(b, dict) for b in value)
        ):
            return value
        raise serializers.ValidationError("Must be a string or a list of content blocks.")


class CountTokensRequestSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=240)
    messages = MessageParamSerializer(many=True, allow_empty=False, max_length=10_000)
    system = serializers.JSONField(required=False, help_text="Text, or text blocks.")
    tools = serializers.ListField(child=serializers.DictField(), required=False, max_length=128)
    tool_choice = serializers.DictField(required=False)
    thinking = serializers.DictField(required=False, help_text="Passed to Anthropic models.")
    # Other Anthropic fields (cache_control, service_tier, container...) are accepted
    # and ignored.

    def validate_system(self, value: Any) -> list[str]:
        if isinstance(value, str):
            return [value] if value else []
        if isinstance(value, list) and all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
            for b in value
        ):
            return [b["text"] for b in value if b["text"]]
        raise serializers.ValidationError("Must be a string or a list of text blocks.")

    def validate_tools(self, value: list[dict]) -> tuple[ToolSpec, ...]:
        specs = []
        for tool in value:
            if tool.get("type", "custom") not in ("custom", None):
                raise serializers.ValidationError(
                    f"Unsupported tool type {tool['type']!r}: only client tools "
                    "(name, description, input_schema) are served."
                )
            schema = tool.get("input_schema", {"type": "object", "properties": {}})
            if not isinstance(tool.get("name"), str) or not isinstance(schema, dict):
                raise serializers.ValidationError("A tool needs 'name' and 'input_schema'.")
            description = tool.get("description") or ""
            specs.append(ToolSpec(tool["name"], str(description), schema))
        return tuple(specs)

    def validate_tool_choice(self, value: dict) -> str | dict:
        """Anthropic's tool_choice as the adapters take it."""
        kind = value.get("type")
        if kind in ("auto", "none"):
            return kind
        if kind == "any":
            return "required"
        if kind == "tool" and isinstance(value.get("name"), str):
            return {"type": "function", "function": {"name": value["name"]}}
        raise serializers.ValidationError(
            "Must be {'type': 'auto' | 'any' | 'none'} or {'type': 'tool', 'name': ...}."
        )


class MessagesRequestSerializer(CountTokensRequestSerializer):
    max_tokens = serializers.IntegerField(min_value=1, max_value=1_000_000)
    temperature = serializers.FloatField(required=False, min_value=0, max_value=1)
    top_p = serializers.FloatField(required=False, min_value=0, max_value=1)
    top_k = serializers.IntegerField(required=False, min_value=0, help_text="Anthropic only.")
    stop_sequences = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False, max_length=1000),
        required=False,
        max_length=8,
    )
    metadata = serializers.DictField(required=False, help_text="Accepted and ignored.")
    stream = serializers.BooleanField(required=False, default=False)
    server_tools = serializers.JSONField(
        required=False,
        help_text="The gateway's server-side tools offered to the model: omitted or false = "
        "none, true = all, a list of names = only those.",
    )
    fallbacks = serializers.ListField(
        child=serializers.CharField(max_length=240), required=False, max_length=5
    )

    def validate_server_tools(self, value: Any) -> Any:
        if isinstance(value, bool) or (
            isinstance(value, list) and all(isinstance(n, str) for n in value)
        ):
            return value
        raise serializers.ValidationError("Must be true, false or a list of tool names.")


def conversation(fields: dict[str, Any], *, limits: ContentLimits) -> tuple[Message, ...]:
    """`system` and `messages` as normalized messages; a refused block is a ContentError
    naming it (`messages[1].content[2]`, `messages[3].content[0].content[1]`)."""
    out = [Message("system", text) for text in fields.get("system") or ()]
    names: dict[str, str] = {}  # tool_use id -> tool name, for the results answering them
    for i, message in enumerate(fields["messages"]):
        where = f"messages[{i}].content"
        if message["role"] == "assistant":
            out.append(_assistant(message["content"], where, names))
        else:
            out += _user(message["content"], where, names, limits)
    return tuple(out)


def _assistant(content: str | list[dict], where: str, names: dict[str, str]) -> Message:
    if isinstance(content, str):
        return Message("assistant", content)
    texts: list[str] = []
    calls: list[ToolCall] = []
    for j, block in enumerate(content):
        at, kind = f"{where}[{j}]", block.get("type")
        if kind == "text":
            texts.append(_text(block, at))
        elif kind == "tool_use":
            call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
            if not (isinstance(call_id, str) and call_id and isinstance(name, str) and name):
                raise ContentError("A tool_use block needs 'id' and 'name'.", where=at)
            if not isinstance(arguments, dict):
                raise ContentError("A tool_use block's 'input' must be an object.", where=at)
            names[call_id] = name
            calls.append(ToolCall(call_id, name, arguments))
        elif kind not in _DROPPED_BLOCKS:
            raise ContentError(
                f"Unsupported block type {kind!r} in an assistant message: use 'text' or "
                "'tool_use'.",
                where=at,
            )
    return Message("assistant", "".join(texts), tool_calls=tuple(calls))


def _user(
    content: str | list[dict], where: str, names: dict[str, str], limits: ContentLimits
) -> list[Message]:
    """A user turn: its tool results (each a tool message, in order), then what the user
    wrote, as the vendors want tool results right after the calls they answer."""
    if isinstance(content, str):
        return [Message("user", content)]
    out: list[Message] = []
    blocks: list[tuple[int, Any]] = []
    for j, block in enumerate(content):
        if block.get("type") == "tool_result":
            out.append(_tool_result(block, f"{where}[{j}]", names, limits))
        else:
            blocks.append((j, _part(block, f"{where}[{j}]")))
    if blocks or not out:
        text, parts = _parsed(blocks, where, "user", limits)
        out.append(Message("user", text, parts=parts))
    return out


def _tool_result(
    block: dict[str, Any], where: str, names: dict[str, str], limits: ContentLimits
) -> Message:
    call_id, content = block.get("tool_use_id"), block.get("content")
    if not isinstance(call_id, str) or not call_id:
        raise ContentError("A tool_result block needs 'tool_use_id'.", where=where)
    text, parts = "", ()
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        inner = f"{where}.content"
        blocks = [(k, _part(b, f"{inner}[{k}]")) for k, b in enumerate(content)]
        text, parts = _parsed(blocks, inner, "tool", limits)
    elif content is not None:
        raise ContentError("A tool_result's content must be text or a list of blocks.", where=where)
    return Message("tool", text, tool_call_id=call_id, name=names.get(call_id), parts=parts)


def _parsed(
    blocks: list[tuple[int, Any]], where: str, role: str, limits: ContentLimits
) -> tuple[str, tuple]:
    """Blocks (in OpenAI's part format, with their index in the request) checked by
    `parse_content`: media types, sizes, the data's first bytes."""
    try:
        return parse_content([part for _, part in blocks], where=where, role=role, limits=limits)
    except ContentError as exc:
        # parse_content counts the parts it was given; the request counts its blocks.
        renamed = {f"{where}[{k}]": f"{where}[{j}]" for k, (j, _) in enumerate(blocks)}
        exc.details["part"] = renamed.get(exc.details["part"], exc.details["part"])
        raise


def _part(block: Any, where: str) -> dict[str, Any]:
    """An Anthropic content block as the OpenAI-format part `parse_content` checks."""
    if not isinstance(block, dict):
        raise ContentError("A content block must be an object.", where=where)
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": _text(block, where)}
    source = block.get("source")
    if kind in ("image", "document") and not isinstance(source, dict):
        raise ContentError(f"An {kind} block needs a 'source'.", where=where)
    if kind == "image":
        if source.get("type") == "base64":
            return {"type": "image_url", "image_url": {"url": _data_uri(source, where)}}
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return {"type": "image_url", "image_url": {"url": source["url"]}}
        raise ContentError(
            "An image's source must be 'base64' (media_type, data) or 'url' (url).", where=where
        )
    if kind == "document":
        if source.get("type") == "base64":
            file = {"file_data": _data_uri(source, where)}
            if isinstance(block.get("title"), str) and block["title"]:
                file["filename"] = block["title"][:255]
            return {"type": "file", "file": file}
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            return {"type": "text", "text": source["data"]}
        raise ContentError(
            "A document's source must be 'base64' (a PDF) or 'text'; URLs and file ids are "
            "not supported.",
            where=where,
        )
    raise ContentError(
        f"Unsupported block type {kind!r}: use 'text', 'image', 'document' or 'tool_result'.",
        where=where,
    )


def _text(block: dict[str, Any], where: str) -> str:
    if not isinstance(block.get("text"), str):
        raise ContentError("A text block needs 'text' (a string).", where=where)
    return block["text"]


def _data_uri(source: dict[str, Any], where: str) -> str:
    media_type, data = source.get("media_type"), source.get("data")
    if not isinstance(media_type, str) or not isinstance(data, str):
        raise ContentError("A base64 source needs 'media_type' and 'data'.", where=where)
    return f"data:{media_type};base64,{data}"


def params(fields: dict[str, Any]) -> dict[str, Any]:
    """Generation params as `wire.params_from` reads them."""
    return {
        "max_tokens": fields["max_tokens"],
        "temperature": fields.get("temperature"),
        "top_p": fields.get("top_p"),
        "stop": fields.get("stop_sequences") or None,
    }


def anthropic_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """`top_k` and `thinking`: fields only Anthropic's API has, sent to Anthropic
    providers of the turn (the pipeline leaves them out for other vendors)."""
    return {name: fields[name] for name in _ANTHROPIC_ONLY if fields.get(name) is not None}


def targets_of(target: gateway.Target) -> list[tuple[str, str]]:
    """(connection, model) of each provider `target` stands for: itself, or a route's
    deployments."""
    if target.route is None:
        return [(target.provider, target.model)]
    return [(d.connection, d.model) for d in target.route.deployments]


def registry_of(turn: pipeline.Turn) -> ProviderRegistry:
    return turn.view.registry if turn.view is not None else gateway.registry()


def estimate_tokens(messages: tuple[Message, ...], tools: tuple[ToolSpec, ...] = ()) -> int:
    """Input tokens as the gateway estimates them where the vendor cannot count: a token
    per 4 characters of text (tool calls and tool definitions as JSON), 4 per message,
    an image IMAGE_TOKENS, a PDF one per DOCUMENT_BYTES_PER_TOKEN bytes (at least
    IMAGE_TOKENS), as chat histories are measured."""
    chars, tokens = 0, 0
    for message in messages:
        chars += len(message.content)
        chars += sum(len(c.name) + len(json.dumps(c.arguments)) for c in message.tool_calls)
        tokens += 4
        for part in message.parts:
            if isinstance(part, ImagePart):
                tokens += IMAGE_TOKENS
            elif isinstance(part, DocumentPart):
                tokens += max(IMAGE_TOKENS, len(part.data) // DOCUMENT_BYTES_PER_TOKEN)
    for tool in tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
    return tokens + math.ceil(chars / 4)
