"""`manage.py demo` (`make demo`): the service with the demo's model behind every provider.

This process runs the demo vendor servers (`providers.testing.demo`) on free ports of
127.0.0.1 and starts the service as `make serve` does (`prepare`, then uvicorn, one
worker) with every provider pointed at them, DEMO=true, its own SQLite database
(db.sqlite3-demo beside manage.py, unless --database-url) and no Redis. Ctrl-C stops
it all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from providers.testing.demo import provider_settings, start_demo_servers


class Command(BaseCommand):
    help = "Run the service with scripted stand-ins for every vendor (no keys, no network)."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--database-url",
            default=f"sqlite:///{settings.BASE_DIR / 'db.sqlite3-demo'}",
            help="The demo's database (default: db.sqlite3-demo beside manage.py).",
        )

    def handle(self, *args: Any, host: str, port: int, database_url: str, **options: Any) -> None:
        servers = start_demo_servers()
        try:
            env = demo_environment(database_url=database_url, providers=provider_settings(servers))
            self._serve(env, host=host, port=port)
        finally:
            for server in servers.values():
                server.stop()

    def _serve(self, env: dict[str, str], *, host: str, port: int) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        prepared = subprocess.run([*manage, "prepare", "--static"], env=env, check=False)  # noqa: S603
        if prepared.returncode != 0:
            raise CommandError("The demo could not be prepared (see above).")
        base = f"http://{host}:{port}"
        self.stdout.write(
            f"DEMO serving on {base}: admin {base}/admin/, API docs {base}/api/docs/, "
            "a session to try in README.md (Quick start). Ctrl-C stops it.\n"
        )
        self.stdout.flush()
        command = [sys.executable, "-m", "uvicorn", "llmwrapper.asgi:application"]
        command += ["--host", host, "--port", str(port), "--workers", "1"]
        command += ["--no-access-log", "--lifespan", "off"]
        server = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env)  # noqa: S603
        stop = _Stop()
        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while server.poll() is None and not stop.requested:
                time.sleep(0.2)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if server.poll() is None:
                server.terminate()
                try:
                    server.wait(10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
        if not stop.requested and server.returncode:
            raise CommandError(f"The demo's server stopped (exit code {server.returncode}).")


class _Stop:
    requested = False

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True


def demo_environment(*, database_url: str, providers: dict[str, str]) -> dict[str, str]:
    """The service's environment in the demo: ours, less what would reach real vendors,
    Redis or the real database, plus the demo's."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in providers and name not in ("REDIS_URL", "LLM_FALLBACKS", "MODEL_ALIASES")
    }
    env.update(providers)
    env.update(
        DEMO="true",
        DATABASE_URL=database_url,
        DEFAULT_LLM_PROVIDER="openai",
        ATTACHMENTS_ROOT=str(settings.BASE_DIR / "attachments" / "demo"),
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("LOG_FORMAT", "text")
    return env
