"""Running the test server for a test: in a subprocess on a port, or spawned over stdio."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

from tools.mcp.config import McpServerConfig

REPO_ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stdio_config(
    name: str = "test", *, server_name: str | None = None, **kw: Any
) -> McpServerConfig:
    """A config that spawns the test server over stdio (with this interpreter)."""
    env = {"PYTHONPATH": str(REPO_ROOT), **(kw.pop("env", None) or {})}
    return McpServerConfig(
        name=name,
        transport="stdio",
        command=sys.executable,
        args=("-m", "tools.mcp.testing", "--transport", "stdio", "--name", server_name or name),
        env=env,
        **kw,
    )


class McpTestServer:
    """The test server in a subprocess on a fixed port; ``stop()`` then ``start()``
    brings it back on the same port, as a restarted real server would."""

    def __init__(
        self,
        transport: Literal["streamable_http", "websocket", "sse"] = "streamable_http",
        *,
        name: str = "test",
        token: str | None = None,
        port: int | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        """``tls``: (certificate file, key file) to serve ``wss://`` (WebSocket only)."""
        self.transport = transport
        self.name = name
        self.token = token
        self.tls = tls
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.transport == "sse":
            return f"http://127.0.0.1:{self.port}/sse"
        scheme = ("wss" if self.tls else "ws") if self.transport == "websocket" else "http"
        return f"{scheme}://127.0.0.1:{self.port}/mcp"

    def config(self, name: str | None = None, **kw: Any) -> McpServerConfig:
        return McpServerConfig(name=name or self.name, transport=self.transport, url=self.url, **kw)

    def start(self, timeout_s: float = 20) -> McpTestServer:
        cmd = [sys.executable, "-m", "tools.mcp.testing", "--transport", self.transport]
        cmd += ["--port", str(self.port), "--name", self.name]
        if self.token:
            cmd += ["--token", self.token]
        if self.tls:
            cmd += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.process = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"MCP test server exited early:\n{err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"MCP test server did not listen on port {self.port}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # A hard kill, like a crash: open connections die without a goodbye.
        process.kill()
        process.wait(10)
        if process.stderr:
            process.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> McpTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
