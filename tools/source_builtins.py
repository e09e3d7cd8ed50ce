"""The built-in tools (calculator, current time) as a tool source: the same for everyone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tenants.models import Subtenant
from tools import runtime
from tools.builtins import BUILTINS, BuiltinTool
from tools.errors import ToolError
from tools.sources import SourceOutcome, SourceTool, ToolSource, result_text


class BuiltinSource(ToolSource):
    name = "builtin"

    def list_tools(self, *, subtenant: Subtenant) -> Sequence[SourceTool]:
        return [
            SourceTool(name, tool.description, tool.parameters, self.name, target=tool)
            for name, tool in BUILTINS.items()
        ]

    async def call(self, tool: SourceTool, arguments: dict[str, Any]) -> SourceOutcome:
        builtin: BuiltinTool = tool.target
        try:
            value = await runtime.run_builtin(builtin, arguments)
        except ToolError as exc:
            return SourceOutcome(f"{exc.type}: {exc.message}", is_error=True, failure=exc.type)
        return SourceOutcome(result_text(value))


BUILTIN_SOURCE = BuiltinSource()
