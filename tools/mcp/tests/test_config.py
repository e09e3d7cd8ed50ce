"""Server configs and tool naming: pure values, no server needed."""

from __future__ import annotations

import re

import pytest

from tools.mcp import McpConfigError, McpServerConfig, qualified_tool_name

VENDOR_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@pytest.mark.parametrize(
    ("protocol", "url", "transport"),
    [
        ("websocket", "ws://localhost:8080/mcp", "websocket"),
        ("http", "https://tools.example.com/mcp", "streamable_http"),
        ("streamable_http", "http://localhost/mcp", "streamable_http"),
        ("sse", "https://tools.example.com/sse", "sse"),
    ],
)
def test_from_dict_accepts_the_seed_protocol_spelling(
    protocol: str, url: str, transport: str
) -> None:
    config = McpServerConfig.from_dict(
        {"name": "my_tools", "url": url, "protocol": protocol, "api_key": "optional_key"}
    )

    assert config.transport == transport
    assert config.url == url
    assert config.api_key == "optional_key"


def test_from_dict_builds_a_stdio_config_from_command_and_args() -> None:
    config = McpServerConfig.from_dict(
        {"name": "files", "protocol": "stdio", "command": "mcp-files", "args": ["--root", "/srv"]}
    )

    assert config.command == "mcp-files"
    assert config.args == ("--root", "/srv")


def test_from_dict_infers_transport_from_url_scheme_or_command() -> None:
    assert McpServerConfig.from_dict({"name": "a", "url": "wss://x.example/mcp"}).transport == (
        "websocket"
    )
    assert McpServerConfig.from_dict({"name": "b", "url": "https://x.example/mcp"}).transport == (
        "streamable_http"
    )
    assert McpServerConfig.from_dict({"name": "c", "command": "srv"}).transport == "stdio"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "protocol": "gopher", "url": "gopher://x"}, "unknown protocol"),
        ({"name": "x", "protocol": "websocket", "url": "http://x/mcp"}, "needs a ws or wss url"),
        ({"name": "x", "protocol": "http"}, "needs a url"),
        ({"name": "x", "protocol": "stdio"}, "stdio needs a command"),
        ({"name": "", "protocol": "stdio", "command": "srv"}, "name is required"),
        ({"name": "x", "command": "srv", "args": "--flag"}, "args must be a list"),
        ({"name": "x", "command": "srv", "timeout": "soon"}, "timeout must be a number"),
    ],
)
def test_invalid_configs_are_rejected_with_a_clear_message(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(McpConfigError, match=message) as caught:
        McpServerConfig.from_dict(data)

    assert caught.value.type == "mcp_config_invalid"


def test_api_key_becomes_a_bearer_authorization_header() -> None:
    config = McpServerConfig(
        name="x",
        transport="streamable_http",
        url="https://x.example/mcp",
        headers={"authorization": "Basic old", "X-Team": "blue"},
        api_key="k-123",
    )

    assert config.request_headers() == {"X-Team": "blue", "Authorization": "Bearer k-123"}


def test_fingerprint_is_stable_and_changes_with_any_field() -> None:
    base = dict(name="x", transport="websocket", url="ws://x.example/mcp", api_key="a")
    config = McpServerConfig(**base)  # type: ignore[arg-type]

    assert config.fingerprint() == McpServerConfig(**base).fingerprint()  # type: ignore[arg-type]
    assert config.fingerprint() != McpServerConfig(**{**base, "api_key": "b"}).fingerprint()  # type: ignore[arg-type]
    assert config.fingerprint() != McpServerConfig(**{**base, "timeout_s": 5}).fingerprint()  # type: ignore[arg-type]
    assert hash(config) == hash(McpServerConfig(**base))  # type: ignore[arg-type]


def test_repr_does_not_show_secrets() -> None:
    config = McpServerConfig(
        name="x",
        transport="stdio",
        command="srv",
        env={"TOKEN": "env-secret"},
        headers={"X-Key": "header-secret"},
        api_key="key-secret",
    )

    assert "secret" not in repr(config)


def test_config_does_not_change_when_the_callers_dicts_do() -> None:
    headers = {"X-Team": "blue"}
    config = McpServerConfig(name="x", transport="sse", url="https://x/sse", headers=headers)

    headers["X-Team"] = "red"

    assert config.headers == {"X-Team": "blue"}


@pytest.mark.parametrize(
    ("server", "tool", "expected"),
    [
        ("github", "search_issues", "github__search_issues"),
        ("my.tools", "files/read", "my_tools__files_read"),
        ("ünï", "tool name", "_n___tool_name"),
    ],
)
def test_qualified_names_follow_the_vendor_tool_name_rule(
    server: str, tool: str, expected: str
) -> None:
    assert qualified_tool_name(server, tool) == expected


def test_long_qualified_names_are_cut_to_64_characters_and_stay_distinct() -> None:
    first = qualified_tool_name("s" * 40, "t" * 40 + "_one")
    second = qualified_tool_name("s" * 40, "t" * 40 + "_two")

    assert VENDOR_TOOL_NAME.match(first)
    assert len(first) == 64
    assert first != second
