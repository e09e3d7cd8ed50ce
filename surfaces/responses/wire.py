"""OpenAI's Responses format, both ways: `input` items to normalized messages, a
finished turn to a `response` object and its output items."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from providers.core import wire
from providers.core.content import ContentError, ContentLimits, Part, parse_content
from providers.core.loop import TurnCompleted
from providers.core.tooling import parse_arguments
from providers.core.types import Message, ToolCall, ToolSpec

_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
_IGNORED_ITEMS = ("reasoning",)  # a model's reasoning summary: nothing to send back


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def messages_from_input(
    value: str | list[Any], *, instructions: str | None, limits: ContentLimits
) -> tuple[Message, ...]:
    """`instructions` and `input` as the conversation; a bad item is a ContentError
    naming it (`input[2]`, `input[2].content[1]`)."""
    out: list[Message] = [Message("system", instructions)] if instructions else []
    if isinstance(value, str):
        return (*out, Message("user", value))
    names: dict[str, str] = {}  # call_id -> tool name, for the outputs that answer them
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise ContentError("An input item must be an object.", where=where)
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, where, limits))
        elif kind == "function_call":
            call = _function_call(item, where)
            names[call.id] = call.name
            if out and out[-1].role == "assistant":  # one assistant turn, text and calls
                last = out.pop()
                out.append(Message("assistant", last.content, (*last.tool_calls, call)))
            else:
                out.append(Message("assistant", "", (call,)))
        elif kind == "function_call_output":
            out.append(_function_output(item, where, names, limits))
        elif kind not in _IGNORED_ITEMS:
            raise ContentError(
                f"Unsupported input item type {kind!r}: use 'message', 'function_call' or "
                "'function_call_output'.",
                where=where,
            )
    return tuple(out)


def _message(item: dict[str, Any], where: str, limits: ContentLimits) -> Message:
    role = _ROLES.get(item.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise ContentError(
            "An input message's role must be user, system, developer or assistant.", where=where
        )
    content = item.get("content")
    if isinstance(content, list):
        content = [_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]
    text, parts = parse_content(content, where=f"{where}.content", role=role, limits=limits)
    return Message(role, text, parts=parts)  # type: ignore[arg-type]


def _part(part: Any, where: str) -> Any:
    """A Responses content part in Chat Completions' part format (which
    `parse_content` checks)."""
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text")}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal")}
    if kind == "input_image":
        if part.get("file_id") and not part.get("image_url"):
            raise ContentError("File ids are not supported: send 'image_url'.", where=where)
        image: dict[str, Any] = {"url": part.get("image_url")}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if not part.get("file_data"):
            raise ContentError(
                "Only inline files are supported: send 'file_data' (a data: URI).", where=where
            )
        file = {"file_data": part["file_data"]}
        if part.get("filename"):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    return part  # parse_content names what it does not know


def _function_call(item: dict[str, Any], where: str) -> ToolCall:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise ContentError("A function_call needs 'call_id' and 'name'.", where=where)
    arguments = item.get("arguments")
    if arguments is not None and not isinstance(arguments, str | dict):
        raise ContentError("'arguments' must be a JSON string.", where=where)
    return ToolCall(call_id, name, parse_arguments(arguments))


def _function_output(
    item: dict[str, Any], where: str, names: dict[str, str], limits: ContentLimits
) -> Message:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise ContentError("A function_call_output needs 'call_id'.", where=where)
    output = item.get("output")
    parts: tuple[Part, ...] = ()
    if isinstance(output, list):
        content = [_part(p, f"{where}.output[{j}]") for j, p in enumerate(output)]
        text, parts = parse_content(content, where=f"{where}.output", role="tool", limits=limits)
    elif isinstance(output, str):
        text = output
    else:
        text = json.dumps(output)
    return Message("tool", text, tool_call_id=call_id, name=names.get(call_id), parts=parts)


def tools_from_request(tools: list[Any] | None) -> tuple[ToolSpec, ...]:
    specs = []
    for i, tool in enumerate(tools or ()):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else tool
            raise ContentError(
                f"Unsupported tool type {kind!r}: only 'function' tools are served.",
                where=f"tools[{i}]",
            )
        if not isinstance(tool.get("name"), str):
            raise ContentError("A function tool needs a 'name'.", where=f"tools[{i}]")
        parameters = tool.get("parameters") or {"type": "object", "properties": {}}
        specs.append(ToolSpec(tool["name"], tool.get("description") or "", parameters))
    return tuple(specs)


def response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    """`text.format` as Chat Completions' `response_format`."""
    fmt = (text or {}).get("format") or {}
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    return None


# -- output ----------------------------------------------------------------------------


def message_item(item_id: str, text: str, *, status: str = "completed") -> dict[str, Any]:
    content = [output_text(text)] if status == "completed" else []
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(item_id: str, call: ToolCall, *, status: str = "completed") -> dict:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.id,
        "name": call.name,
        "arguments": wire.dumps_arguments(call.arguments) if status == "completed" else "",
        "status": status,
    }


def usage(turn: TurnCompleted) -> dict[str, Any]:
    return {
        "input_tokens": turn.usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": turn.usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": turn.usage.total_tokens,
    }


def response_object(
    response_id: str, request: dict[str, Any], *, created_at: int, status: str = "in_progress"
) -> dict[str, Any]:
    """A `response` as the request describes it, before any output."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": request["model"],
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "store": request.get("store", True),
        "temperature": request.get("temperature"),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "metadata": request.get("metadata") or {},
    }


def finished(
    response: dict[str, Any], turn: TurnCompleted, output: list[dict[str, Any]]
) -> dict[str, Any]:
    """The response once the turn completed."""
    done = {**response, "output": output, "usage": usage(turn), "completed_at": int(time.time())}
    if turn.finish_reason == "length":
        done.update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    elif turn.finish_reason == "content_filter":
        done.update(status="incomplete", incomplete_details={"reason": "content_filter"})
    else:
        done["status"] = "completed"
    return done


def output_items(text: str, calls: tuple[ToolCall, ...], message: object) -> list[dict[str, Any]]:
    """A finished turn's output: its text as one message item, then the calls of the
    client's tools."""
    items = [message_item(message_item_id(message), text)] if text or not calls else []
    return items + [function_call_item(call_item_id(call), call) for call in calls]


def message_item_id(message: object) -> str:
    """The output message's id: from the stored assistant message, so reading the
    response back gives the same ids; random for a response that is not stored."""
    stored = getattr(message, "id", None)
    return f"msg_{stored.hex}" if isinstance(stored, uuid.UUID) else new_id("msg")


def call_item_id(call: ToolCall) -> str:
    return f"fc_{call.id}"
