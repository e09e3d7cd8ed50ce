"""Every error family shares one Django-free base and renders through one handler."""

import subprocess
import sys

import pytest

from llmwrapper.errors import ApplicationError, ResourceNotFoundError, exception_handler
from providers.core.error_base import GatewayError
from providers.core.errors import ProviderError, ProviderRateLimitError, UnknownProviderError
from tenants.limits import RateLimitedError
from tools.errors import SandboxTimeoutError, ToolError
from tools.mcp.errors import McpConfigError, McpError, McpToolNotFoundError


@pytest.mark.parametrize("family", [ApplicationError, ProviderError, ToolError, McpError])
def test_every_error_family_subclasses_the_one_base(family):
    assert issubclass(family, GatewayError)


def test_the_base_and_the_django_free_families_import_no_django():
    code = (
        "import sys, providers.core.error_base, providers.core.errors\n"
        "import tools.errors, tools.mcp.errors\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'rest_framework', 'channels')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# (error, status, body["error"], headers): each family's wire shape as it has always been.
CASES = [
    (ResourceNotFoundError("Chat not found."), 404, ("not_found", "Chat not found.", None), {}),
    (
        RateLimitedError("Too many.", retry_after=3, details={"scope": "key"}),
        429,
        ("rate_limited", "Too many.", {"retry_after": 3, "scope": "key"}),
        {"Retry-After": "3"},
    ),
    (
        ProviderRateLimitError("Slow down", provider="openai", upstream_status=429),
        429,
        (
            "provider_rate_limited",
            "Slow down",
            {"provider": "openai", "upstream_status": 429, "retry_after": 5},
        ),
        {"Retry-After": "5"},
    ),
    (
        UnknownProviderError("nope", ["openai"]),
        400,
        (
            "unknown_provider",
            "Unknown provider 'nope' (available: openai)",
            {"provider": "nope", "upstream_status": None, "available": ["openai"]},
        ),
        {},
    ),
    (SandboxTimeoutError("Too slow."), 504, ("sandbox_timeout", "Too slow.", None), {}),
    (
        ToolError("Bad.", details={"field": "x"}),
        400,
        ("tool_error", "Bad.", {"field": "x"}),
        {},
    ),
    (McpToolNotFoundError("No tool."), 404, ("mcp_tool_not_found", "No tool.", {}), {}),
    (McpConfigError("Bad config.", status=422), 422, ("mcp_config_invalid", "Bad config.", {}), {}),
]


@pytest.mark.parametrize(("error", "status", "shape", "headers"), CASES)
def test_the_http_handler_renders_every_family_as_its_to_dict(error, status, shape, headers):
    type_, message, details = shape
    response = exception_handler(error, {})
    assert response.status_code == status
    assert response.data == {"error": {"type": type_, "message": message, "details": details}}
    assert response.data == {"error": error.to_dict()}
    assert {k: v for k, v in response.items() if k not in ("Content-Type", "Vary")} == headers
