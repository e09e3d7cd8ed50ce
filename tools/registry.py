"""The sources of server-side tools, in the order their tools are offered.

Adding a source: its module (a `tools.sources.ToolSource`) and one line here. Where two
sources offer the same name, the later one wins.
"""

from __future__ import annotations

from tools.source_builtins import BUILTIN_SOURCE
from tools.source_functions import FUNCTION_SOURCE
from tools.source_mcp import MCP_SOURCE
from tools.sources import ToolSource

SOURCES: list[ToolSource] = [BUILTIN_SOURCE, FUNCTION_SOURCE, MCP_SOURCE]
