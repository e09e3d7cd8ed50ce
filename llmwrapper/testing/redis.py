"""A throwaway redis-server for fault tests: started, stopped and killed at will.

It listens on a free port of 127.0.0.1 and keeps nothing on disk, so a restart starts
empty, as a Redis without persistence does.
"""

from __future__ import annotations

import shutil
import subprocess

from llmwrapper.testing.ports import free_port, wait_for_port


def available() -> bool:
    return shutil.which("redis-server") is not None


class ThrowawayRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        if not wait_for_port(self.port, timeout=10):
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Shut down in order (clients see their connections closed)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def kill(self) -> None:
        """Die at once, as a crashed server does."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def __enter__(self) -> ThrowawayRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
