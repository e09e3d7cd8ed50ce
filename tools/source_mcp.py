"""The tools of a subtenant's MCP servers as a tool source.

Listed as stored at each server's last check, so no server is contacted to build a
request; a call goes to the server through the process's connection manager.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tenants.models import Subtenant
from tools import runtime, selectors
from tools.errors import ToolError
from tools.mcp.errors import McpError
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
        text = result.text or json.dumps(result.structured or result.content, default=str)
        return SourceOutcome(
            text, is_error=result.is_error, failure="tool_error" if result.is_error else None
        )


MCP_SOURCE = McpSource()
