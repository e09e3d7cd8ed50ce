"""Function calling through llmwrapper, end to end.

    export LLMWRAPPER_URL=http://127.0.0.1:8000 LLMWRAPPER_ADMIN_KEY=lw_...
    python examples/function_calling_example.py

With an admin key it creates a subtenant and a key for it, registers a custom
function, creates a chat, and asks a question that needs the built-in tools
(`get_current_time`, `calculator`), then shows the same request in the new `tools`
format and the legacy `functions` format. Needs only httpx.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any, TextIO

import httpx

QUESTION = "What time is it and what's 15 * 23?"

WEATHER_FUNCTION = {
    "name": "weather_check",
    "description": "Get weather for a location",
    "parameters": [
        {"name": "location", "type": "string", "description": "Location to check", "required": True}
    ],
    "code": "def weather_function(location): return f'Weather in {location}: Sunny, 25°C'",
}

CUSTOM_TOOL = {
    "name": "custom_function",
    "description": "A custom function the client runs itself",
    "parameters": {"type": "object", "properties": {"value": {"type": "string"}}},
}


def main(base_url: str, admin_key: str, *, out: TextIO = sys.stdout) -> dict[str, Any]:
    def say(*parts: object) -> None:
        print(*parts, file=out)

    admin = _client(base_url, admin_key)
    subtenant, key = _create_subtenant(admin)
    api = _client(base_url, key)
    functions = _register_custom_function(admin, api, say)
    chat = (
        api.post(f"/subtenants/{subtenant['id']}/chats", json={"title": "Function calling"})
        .raise_for_status()
        .json()
    )

    # New tools format: server-side built-ins run on the server; custom_function is the client's.
    answer = _ask(api, chat["id"], tools=[{"type": "function", "function": CUSTOM_TOOL}])
    for message in answer["messages"]:
        if message["role"] == "tool":
            say(f"  tool {message['name']} -> {message['content']}")
    say("assistant:", answer["message"]["content"])

    # Legacy functions format: the same request shape of older clients.
    legacy = _ask(api, chat["id"], functions=[CUSTOM_TOOL])
    say("assistant (legacy functions format):", legacy["message"]["content"])
    return {"tools_format": answer, "functions_format": legacy, "functions": functions}


def _client(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base_url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


def _create_subtenant(admin: httpx.Client) -> tuple[dict[str, Any], str]:
    """A new subtenant and an API key for it."""
    subtenant = (
        admin.post("/subtenants", json={"name": f"example-{uuid.uuid4().hex[:8]}"})
        .raise_for_status()
        .json()
    )
    key = (
        admin.post(f"/subtenants/{subtenant['id']}/keys", json={"name": "example"})
        .raise_for_status()
        .json()["key"]
    )
    return subtenant, key


def _register_custom_function(
    admin: httpx.Client, api: httpx.Client, say: Callable[..., None]
) -> list[str]:
    """Register ``weather_check`` and run it once; the names of the available functions."""
    # A custom function (code functions need an admin key; the sandbox runs them).
    registered = admin.post("/functions/register", json=WEATHER_FUNCTION)
    say("register weather_check:", registered.status_code)
    functions = [f["name"] for f in api.get("/functions").raise_for_status().json()["results"]]
    say("functions:", ", ".join(functions))
    if registered.status_code == 201:
        run = api.post(
            "/functions/weather_check/execute", json={"arguments": {"location": "Paris"}}
        )
        say("weather_check(Paris):", run.json().get("result", run.json()))
    return functions


def _ask(api: httpx.Client, chat_id: str, **tools: Any) -> dict[str, Any]:
    """The chat's answer to ``QUESTION``, offering the client's tools as ``tools`` says."""
    return (
        api.post(
            f"/chats/{chat_id}/messages",
            json={"content": QUESTION, "include_memories": False, **tools},
        )
        .raise_for_status()
        .json()
    )


if __name__ == "__main__":
    url = os.environ.get("LLMWRAPPER_URL", "http://127.0.0.1:8000")
    admin_key = os.environ.get("LLMWRAPPER_ADMIN_KEY")
    if not admin_key:
        sys.exit("Set LLMWRAPPER_ADMIN_KEY (printed by `make run`).")
    result = main(url, admin_key)
    json.dump({"finish_reason": result["tools_format"]["finish_reason"]}, sys.stdout)
    print()
