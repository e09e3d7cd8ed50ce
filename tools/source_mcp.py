"""The tools of a subtenant's MCP servers as a tool source.

Listed as stored at each server's last check, so no server is contacted to build a
request; a call goes to the server through the process's connection manager. A result's
images and embedded documents reach the model as content parts (tools.mcp.result_content).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings

from providers.gateway import content_limits
from tenants.models import Subtenant
from tools import runtime, selectors
from tools.errors import ToolError
from tools.mcp.errors import McpError
from tools.mcp.result_content import result_content
from tools.sources import SourceOutcome, SourceTool, ToolSource


class McpSource(ToolSource):
    name = "mcp"

    def list_tools(self, *, subtenant: Subtenant) -> Sequence[SourceTool]:
        return [
            SourceTool(
                tool["qualified_name"],
                tool.get("description") or "",
                tool["input_schema"],
                self.name,
                target=(server, tool["name"]),
            )
            for server in selectors.mcp_server_list(subtenant=subtenant)
            for tool in server.tools
        ]

    async def call(self, tool: SourceTool, arguments: dict[str, Any]) -> SourceOutcome:
        server, name = tool.target
        try:
            result = await runtime.run_mcp_tool(server, name, arguments)
        except (McpError, ToolError) as exc:
            return SourceOutcome(f"{exc.type}: {exc.message}", is_error=True, failure=exc.type)
        content = result_content(
            result.content,
            structured=result.structured,
            limits=content_limits(),
            max_text_chars=settings.TOOL_MAX_RESULT_CHARS,
        )
        return SourceOutcome(
            content.text,
            is_error=result.is_error,
            failure="tool_error" if result.is_error else None,
            parts=content.parts,
        )


MCP_SOURCE = McpSource()
