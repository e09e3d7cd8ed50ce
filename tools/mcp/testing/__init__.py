"""A real MCP server for tests and examples, over stdio, streamable HTTP or WebSocket.

Tools: ``add(a, b)``, ``echo(text)``, ``search(query)`` (answers with the server's
``--name``, so two servers with the same tool can be told apart), ``fail()`` (always
raises), ``sleep(seconds)``, ``media()`` (text, an image ``TINY_PNG``, an embedded PDF
``TINY_PDF``, a text resource and a resource link), and diagnostics:
``handshakes_seen()`` (initialize and server/discover requests this process has seen),
``pid()``, ``env_keys()``.

``python -m tools.mcp.testing`` runs one (see ``serving``). In tests, ``McpTestServer``
runs one in a subprocess that can be stopped and restarted on the same port, and
``stdio_config`` builds a config that spawns one. ``TcpFront`` is a TCP listener in
front of a server that counts connections and can answer every request with an HTTP
redirect instead.
"""

from tools.mcp.testing.media import TINY_PDF, TINY_PNG
from tools.mcp.testing.process import McpTestServer, free_port, stdio_config
from tools.mcp.testing.server import build_server
from tools.mcp.testing.tcp_front import TcpFront

__all__ = [
    "TINY_PDF",
    "TINY_PNG",
    "McpTestServer",
    "TcpFront",
    "build_server",
    "free_port",
    "stdio_config",
]
