"""The demo's model: the fake vendor servers with a scripted model that can talk.

`make demo` (`manage.py demo`) puts one of these behind every provider, so the service
runs with no vendor account and no network. Each speaks its vendor's wire protocol
(the fakes' own code: `fake_for(descriptor)`), streams word by word, and answers
from the conversation it is sent:

- a question about the time or date calls the built-in `get_current_time` (with a
  time zone such as Europe/Paris when one is named); an arithmetic expression
  ("what is (2 + 3) * 4?") calls `calculator`; both at once call both, in parallel;
- the next round, which carries the tool results, answers with them;
- anything else gets a short answer quoting the message, naming the memories the
  service put into its context, and saying what to try.

Answers scripted with `enqueue` still come first, as with every fake. No Django here.

    python -m providers.testing.demo        # the four servers, and the settings for them
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from providers.core.base import ProviderDescriptor
from providers.core.descriptors import all_descriptors
from providers.testing._chat import ChatFake, Reply
from providers.testing._server import Script
from providers.testing.fakes import fake_for

# Seconds between two streamed words: slow enough to watch, quick enough not to wait.
WORD_DELAY = 0.03
DEMO_API_KEY = "demo-key"
MEMORY_HEADER = "Known facts about this user and account"

_TIME = re.compile(r"\b(time|date|clock|today)\b|\bwhat day\b", re.IGNORECASE)
_ZONE = re.compile(r"\b([A-Z][a-z]+(?:/[A-Z][A-Za-z_]+)+|UTC)\b")
_FUNCTIONS = "sqrt|abs|round|floor|ceil|exp|log|log2|log10|sin|cos|tan|pi|tau|e"
_EXPRESSION = re.compile(rf"(?:\d+(?:\.\d+)?|\b(?:{_FUNCTIONS})\b|[-+*/%^()]|[ \t])+")
_OPERATION = re.compile(rf"[\d)]\s*[-+*/%^]\s*[\d(]|\b(?:{_FUNCTIONS})\s*\(")


@dataclass
class ToolOutcome:
    name: str
    arguments: dict[str, Any]
    content: str


@dataclass
class Conversation:
    """What the demo model reads from a request, whatever the vendor's format."""

    system: str = ""
    tools: set[str] = field(default_factory=set)
    user_text: str = ""
    results: list[ToolOutcome] = field(default_factory=list)

    def memories(self) -> list[str]:
        """The memories the service rendered into the system prompt (`key: value`)."""
        lines = self.system.split(MEMORY_HEADER, 1)
        if len(lines) < 2:
            return []
        return [
            line[2:].strip()
            for line in lines[1].splitlines()
            if line.startswith("- ") and line[2:].strip()
        ]


class DemoModel(ChatFake):
    """Mixed into a vendor's fake (see `demo_fake_for`): plans each answer from the
    conversation instead of echoing it."""

    word_delay = WORD_DELAY

    def next_script(self) -> Script | None:
        return super().next_script() or Script(chunk_delay=self.word_delay)

    def plan(self, body: dict, script: Script) -> Reply:
        if script.text is None and script.tool_calls is None and script.status < 400:
            text, calls = answer(read_conversation(body))
            script = dataclasses.replace(script, text=text, tool_calls=calls or None)
        return super().plan(body, script)

    def chunks_of(self, reply: Reply, script: Script) -> list[str]:
        if script.chunks:
            return super().chunks_of(reply, script)
        return re.findall(r"\S+\s*|\s+", reply.text)


def demo_fake_for(described: ProviderDescriptor) -> type[ChatFake]:
    """The demo server for a provider: its vendor's fake, with the demo's model."""
    base = fake_for(described)
    return type(f"Demo{base.__name__}", (DemoModel, base), {})


# -- reading a request ------------------------------------------------------------


def read_conversation(body: dict) -> Conversation:
    """The system text, the tools offered, the user's last words and the results of
    the tool calls that end the conversation, from an OpenAI, Anthropic or Ollama body."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    conversation = Conversation(system=_text(body.get("system")))
    conversation.system += "\n".join(
        _text(m.get("content")) for m in messages if _role(m) == "system"
    )
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            name = tool.get("name") or (tool.get("function") or {}).get("name")
            if name:
                conversation.tools.add(name)
    calls: dict[str, tuple[str, dict]] = {}  # call id (or name, for Ollama) -> call
    for message in messages:
        if _role(message) == "assistant":
            for call_id, name, arguments in _calls_of(message):
                calls[call_id or name] = (name, arguments)
                calls.setdefault(name, (name, arguments))
    for message in reversed(messages):
        results = _results_of(message)
        if results is None:
            break
        for key, content in results:
            name, arguments = calls.get(key or "", (key or "tool", {}))
            conversation.results.insert(0, ToolOutcome(name, arguments, content))
    for message in reversed(messages):
        if _role(message) == "user" and _results_of(message) is None:
            conversation.user_text = _text(message.get("content"))
            break
    return conversation


def _role(message: dict) -> str:
    return str(message.get("role") or "")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            block.get("text", "")
            for block in content
            if isinstance(block, dict) and block.get("type", "text") == "text"
        ).strip()
    return ""


def _calls_of(message: dict) -> list[tuple[str, str, dict]]:
    found = []
    for call in message.get("tool_calls") or []:  # OpenAI, Ollama
        function = call.get("function") or {}
        arguments = function.get("arguments") or {}
        if isinstance(arguments, str):
            with contextlib.suppress(ValueError):
                arguments = json.loads(arguments)
        found.append((call.get("id") or "", function.get("name") or "", arguments))
    content = message.get("content")
    for block in content if isinstance(content, list) else []:  # Anthropic
        if isinstance(block, dict) and block.get("type") == "tool_use":
            found.append((block.get("id") or "", block.get("name") or "", block.get("input") or {}))
    return found


def _results_of(message: dict) -> list[tuple[str, str]] | None:
    """(call id or tool name, result text) of a message carrying tool results; None
    for any other message."""
    if _role(message) == "tool":  # OpenAI (by id), Ollama (by name)
        key = message.get("tool_call_id") or message.get("tool_name") or ""
        return [(key, _text(message.get("content")))]
    content = message.get("content")
    if _role(message) == "user" and isinstance(content, list):  # Anthropic
        blocks = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        if blocks:
            return [(b.get("tool_use_id") or "", _text(b.get("content"))) for b in blocks]
    return None


# -- answering --------------------------------------------------------------------


def answer(conversation: Conversation) -> tuple[str, list[dict]]:
    """The demo model's answer: (text, tool calls)."""
    if conversation.results:
        return " ".join(_say_result(r) for r in conversation.results), []
    text = conversation.user_text
    calls: list[dict] = []
    missing: list[str] = []
    if _TIME.search(text):
        zone = _ZONE.search(text)
        arguments = {"timezone": zone.group(1)} if zone and zone.group(1) != "UTC" else {}
        _offer("get_current_time", arguments, conversation, calls, missing)
    expression = _expression(text)
    if expression:
        _offer("calculator", {"expression": expression}, conversation, calls, missing)
    if calls:
        return "", calls
    return _small_talk(conversation, missing), []


def _offer(
    name: str, arguments: dict, conversation: Conversation, calls: list, missing: list
) -> None:
    if name in conversation.tools:
        calls.append(
            {"id": f"call_demo_{secrets.token_hex(6)}", "name": name, "arguments": arguments}
        )
    else:
        missing.append(name)


def _expression(text: str) -> str:
    """The longest arithmetic expression in the text (one with an operation), or ''."""
    found = (m.group(0).strip() for m in _EXPRESSION.finditer(text))
    expressions = [e for e in found if _OPERATION.search(e)]
    return max(expressions, key=len, default="").replace("^", "**")


def _say_result(result: ToolOutcome) -> str:
    try:
        value = json.loads(result.content)
    except ValueError:
        value = result.content
    if isinstance(value, dict) and "error" in value:
        return f"The tool {result.name} failed: {value['error']}."
    if result.name == "get_current_time" and isinstance(value, dict) and "iso" in value:
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(value["iso"])
            return (
                f"It is {moment:%H:%M} on {moment:%A} {moment.day} {moment:%B %Y} in "
                f"{value.get('timezone', 'UTC')} "
                "(from the get_current_time tool)."
            )
    if result.name == "calculator" and "expression" in result.arguments:
        return f"{result.arguments['expression']} = {value} (worked out by the calculator tool)."
    return f"The tool {result.name} answered: {result.content}"


def _small_talk(conversation: Conversation, missing: list[str]) -> str:
    said = " ".join(conversation.user_text.split())
    quoted = said if len(said) <= 80 else said[:77] + "..."
    parts = [f'This is the demo model (scripted, no real LLM). You said: "{quoted}".']
    memories = conversation.memories()
    if memories:
        parts.append("From your memories I know: " + "; ".join(memories) + ".")
    if missing:
        parts.append(
            "I would call " + " and ".join(missing) + ", but the request offered no such tool."
        )
    else:
        parts.append(
            "Ask me what time it is in Europe/Paris, or what (2 + 3) * 4 is, "
            "to watch the built-in tools run."
        )
    return " ".join(parts)


# -- the servers ------------------------------------------------------------------


def start_demo_servers(host: str = "127.0.0.1") -> dict[str, ChatFake]:
    """A running demo server for every provider a fake can speak, by provider name."""
    servers: dict[str, ChatFake] = {}
    for described in all_descriptors():
        try:
            server_class = demo_fake_for(described)
        except LookupError:
            continue
        servers[described.name] = server_class(host=host, max_recorded=100).start()
    return servers


def provider_settings(servers: dict[str, ChatFake]) -> dict[str, str]:
    """The environment that points each provider at its demo server."""
    env: dict[str, str] = {}
    for described in all_descriptors():
        server = servers.get(described.name)
        if server is None:
            continue
        if endpoint := described.setting("base_url"):
            env[endpoint.name] = server.base_url
        if key := described.setting("api_key"):
            env[key.name] = DEMO_API_KEY
    return env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the demo's model behind every provider.")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    servers = start_demo_servers(args.host)
    try:
        for name, value in provider_settings(servers).items():
            print(f"{name}={value}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
