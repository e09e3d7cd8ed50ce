"""Registered functions (sandboxed code or webhooks) as a tool source."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tenants.models import Subtenant
from tools import runtime, selectors
from tools.errors import ToolError
from tools.models import Function
from tools.sources import SourceOutcome, SourceTool, ToolSource, result_text


class FunctionSource(ToolSource):
    name = "function"

    def list_tools(self, *, subtenant: Subtenant) -> Sequence[SourceTool]:
        return [
            SourceTool(f.name, f.description, f.parameters, self.name, target=f)
            for f in selectors.function_list(subtenant=subtenant)
        ]

    async def call(self, tool: SourceTool, arguments: dict[str, Any]) -> SourceOutcome:
        function: Function = tool.target
        try:
            value = await runtime.run_function(function, arguments)
        except ToolError as exc:
            return SourceOutcome(f"{exc.type}: {exc.message}", is_error=True, failure=exc.type)
        return SourceOutcome(result_text(value))


FUNCTION_SOURCE = FunctionSource()
