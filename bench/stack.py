"""The processes under test: the fake upstream and the gateway, started and always stopped.

`Stack` is a context manager. Everything it starts runs in its own session (process
group), so closing the stack, an exception or Ctrl-C stops the uvicorn master together
with its workers. Each started server is a `Server`: a name, a base URL and the process
tree whose CPU time and memory are measured. Another system to compare is one more
`Server` in `Stack.servers`: LiteLLM's proxy ("litellm", `StackConfig.litellm`) runs from
its own virtualenv, with an environment of its own (none of the project's settings), 2
uvicorn workers, no database, retries and callbacks off, its telemetry and every remote
fetch it knows of (model cost map, ...) disabled, pointed at the same fake upstream.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Settings a developer's shell may carry that would change what is measured.
_STRIPPED_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "DEBUG",
    "DJANGO_SETTINGS_MODULE",
    "DEFAULT_LLM_PROVIDER",
    "LLM_FALLBACKS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "PRIVATE_CLOUD_ENDPOINT",
    "PRIVATE_CLOUD_API_KEY",
    "LOCAL_LLM_ENDPOINT",
)


class StackError(RuntimeError):
    """A process would not start or answer; the message says which and where its log is."""


@dataclass
class Server:
    """One HTTP server under test."""

    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        """The server's process and all its descendants (uvicorn master + workers)."""
        return [self.pid, *_descendants(self.pid)]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole tree, threads included."""
        return sum(_cpu_seconds(pid) for pid in self.pids())

    def memory(self) -> Memory:
        return Memory.of(self.pids())


@dataclass(frozen=True)
class Memory:
    processes: int
    rss_kb: int  # sum of current resident set sizes
    hwm_kb: int  # sum of each process's peak resident set size (VmHWM)

    @classmethod
    def of(cls, pids: list[int]) -> Memory:
        rss = hwm = count = 0
        for pid in pids:
            status = _proc_status(pid)
            if status:
                count += 1
                rss += status.get("VmRSS", 0)
                hwm += status.get("VmHWM", 0)
        return cls(count, rss, hwm)


@dataclass
class StackConfig:
    python: str = sys.executable
    workers: int = 2
    loop: str = "uvloop"  # py-spy cannot see Python frames run from uvloop's C loop
    http: str = "httptools"
    database_url: str | None = None  # default: a throwaway SQLite file
    log_dir: Path = BENCH / "results"
    gateway: bool = True  # False: upstream, database and key only (in-process measurements)
    extra_env: dict[str, str] = field(default_factory=dict)
    litellm: Path | None = None  # bin/ of a virtualenv with LiteLLM's proxy: start it too
    litellm_workers: int = 2
    upstream_args: tuple[str, ...] = ()  # e.g. ("--chunks", "20", "--chunk-delay", "0.1")


# LiteLLM reads these to stay off the network: bundled model cost map, blog posts,
# Anthropic beta headers, policy templates and auto-router presets instead of fetching
# them, and no usage telemetry (LITELLM_TELEMETRY is the older switch, harmless here).
LITELLM_OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_TELEMETRY_DISABLED": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_MODE": "PRODUCTION",  # do not load a .env file
}

# uvicorn's logging for LiteLLM: startup lines kept (readiness is read from them), no
# access log (the gateway runs with --no-access-log too).
_LITELLM_LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


class Stack:
    """Fake upstream + migrated database + API key + gateway under uvicorn."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.servers: dict[str, Server] = {}
        self.api_key = ""
        self.subtenant_id = ""
        self.litellm_key = ""
        self._tmp = Path(tempfile.mkdtemp(prefix="llmwrapper-bench-"))
        self._logs: list[IO[bytes]] = []
        self._env = self._base_env()

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        self.check_server_deps()
        self.start_upstream()
        self.django("migrate", "--noinput", "-v0")
        self.create_key()
        if self.config.gateway:
            self.start_gateway()
        if self.config.litellm is not None:
            self.start_litellm(self.config.litellm)

    def close(self) -> None:
        for server in reversed(list(self.servers.values())):
            _stop(server.process)
        self.servers.clear()
        for log in self._logs:
            with contextlib.suppress(OSError):
                log.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        """The environment the project's processes run with (settings included)."""
        return dict(self._env)

    # -- pieces ------------------------------------------------------------------------

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
        database_url = self.config.database_url or f"sqlite:///{self._tmp / 'bench.sqlite3'}"
        env.update(
            PYTHONPATH=str(REPO),
            DATABASE_URL=database_url,
            SECRET_KEY=secrets.token_urlsafe(50),
            DEBUG="false",
            OPENAI_API_KEY="bench-upstream-key",
            DEFAULT_LLM_PROVIDER="openai",
        )
        env.update(self.config.extra_env)
        return env

    def check_server_deps(self) -> None:
        """uvicorn falls back to slow pure-Python parts silently; refuse to measure that."""
        modules = ["uvicorn", "django"]
        if self.config.http == "httptools":
            modules.append("httptools")
        if self.config.loop == "uvloop":
            modules.append("uvloop")
        code = "import " + ", ".join(modules)
        result = subprocess.run(
            [self.config.python, "-c", code], capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise StackError(
                f"{self.config.python} cannot import {', '.join(modules)}: install "
                f"'uvicorn[standard]' (httptools + uvloop).\n{result.stderr.strip()}"
            )

    def start_upstream(self) -> Server:
        port = free_port()
        server = self._spawn(
            "direct",
            [
                self.config.python,
                str(BENCH / "upstream.py"),
                "--port",
                str(port),
                *self.config.upstream_args,
            ],
            f"http://127.0.0.1:{port}",
        )
        wait_http(server, "/v1/models")
        self._env["OPENAI_BASE_URL"] = f"{server.base_url}/v1"
        return server

    def start_gateway(self) -> Server:
        port = free_port()
        command = [
            self.config.python,
            "-m",
            "uvicorn",
            "llmwrapper.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(self.config.workers),
            "--http",
            self.config.http,
            "--loop",
            self.config.loop,
            "--no-access-log",
            "--lifespan",
            "off",
        ]
        server = self._spawn("gateway", command, f"http://127.0.0.1:{port}")
        wait_http(server, "/health")
        # Every worker, not only the first to answer, should be serving before load
        # starts; a log level hiding uvicorn's startup lines only costs the wait.
        wait_log(server, "Started server process", self.config.workers, strict=False)
        return server

    def start_litellm(self, bin_dir: Path) -> Server:
        """LiteLLM's proxy: `openai/gpt-4o-mini` at the fake upstream, a master key."""
        port = free_port()
        upstream = self.servers["direct"].base_url
        self.litellm_key = "sk-bench-" + secrets.token_hex(16)
        home = self._tmp / "litellm"
        home.mkdir()
        config = {
            "model_list": [
                {
                    "model_name": "gpt-4o-mini",
                    "litellm_params": {
                        "model": "openai/gpt-4o-mini",
                        "api_base": f"{upstream}/v1",
                        "api_key": "bench-upstream-key",
                    },
                }
            ],
            "general_settings": {"master_key": self.litellm_key},
            "litellm_settings": {
                "num_retries": 0,
                "request_timeout": 30,
                "callbacks": [],
                "success_callback": [],
                "failure_callback": [],
                "telemetry": False,
            },
            "router_settings": {"num_retries": 0},
        }
        config_path = home / "config.yaml"  # JSON is YAML
        config_path.write_text(json.dumps(config, indent=2) + "\n")
        log_config = home / "log-config.json"
        log_config.write_text(json.dumps(_LITELLM_LOG_CONFIG) + "\n")
        workers = self.config.litellm_workers
        command = [
            str(bin_dir / "litellm"),
            "--config",
            str(config_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            str(workers),
            "--log_config",
            str(log_config),
            # Importing the proxy takes longer than uvicorn's default 5 s on two busy
            # cores: without this, uvicorn kills and restarts workers while they start.
            "--timeout_worker_healthcheck",
            "180",
        ]
        # Nothing of the project's environment (DATABASE_URL would make it use a database).
        env = {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(home),
            **LITELLM_OFFLINE_ENV,
        }
        server = self._spawn("litellm", command, f"http://127.0.0.1:{port}", env=env, cwd=home)
        wait_http(server, "/health/liveliness", timeout=300)
        wait_log(server, "Application startup complete.", workers, timeout=300)
        return server

    def django(self, *args: str, stdin: str | None = None) -> str:
        """Run `manage.py <args>` against the benchmark database; return its stdout."""
        result = subprocess.run(
            [self.config.python, "manage.py", *args],
            cwd=REPO,
            env=self._env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise StackError(f"manage.py {args[0]} failed:\n{result.stderr.strip()}")
        return result.stdout

    def django_json(self, code: str) -> Any:
        """Run Python code in the project (via `manage.py shell`); it must set `result`.

        Scenarios use this to create what they need (chats, messages, memories) through
        the project's own services before load starts.
        """
        wrapper = (
            f"{code}\nimport json as _json\nprint('BENCH_JSON ' + _json.dumps(result, default=str))"
        )
        out = self.django("shell", "--no-imports", "-c", wrapper)
        for line in out.splitlines():
            if line.startswith("BENCH_JSON "):
                return json.loads(line.removeprefix("BENCH_JSON "))
        raise StackError(f"shell script printed no result:\n{out}")

    def create_key(self) -> None:
        created = self.django_json(
            "from tenants.services import api_key_create, subtenant_create\n"
            "import secrets\n"
            "sub = subtenant_create(name='bench-' + secrets.token_hex(4))\n"
            "key, raw = api_key_create(name='bench', subtenant=sub)\n"
            "result = {'subtenant': str(sub.pk), 'key': raw}\n"
        )
        self.subtenant_id = created["subtenant"]
        self.api_key = created["key"]

    def _spawn(
        self,
        name: str,
        command: list[str],
        base_url: str,
        *,
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
    ) -> Server:
        log_path = self.config.log_dir / f"{name}.log"
        log = log_path.open("wb")
        self._logs.append(log)
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=self._env if env is None else env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
        )
        server = Server(name, base_url, process, log_path)
        self.servers[name] = server
        return server


# -- helpers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(server: Server, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise StackError(
                f"{server.name} exited with {server.process.returncode}; see {server.log_path}"
            )
        try:
            with urllib.request.urlopen(server.base_url + path, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
                last = f"status {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise StackError(
        f"{server.name} not ready after {timeout:.0f} s ({last}); see {server.log_path}"
    )


def wait_log(
    server: Server, marker: str, count: int, timeout: float = 60.0, *, strict: bool = True
) -> None:
    """Wait until the server's log holds `marker` `count` times (one per worker).

    On timeout: a `StackError` when `strict`, else a warning on stderr.
    """
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise StackError(
                f"{server.name} exited with {server.process.returncode}; see {server.log_path}"
            )
        seen = server.log_path.read_text(errors="replace").count(marker)
        if seen >= count:
            return
        time.sleep(0.2)
    message = (
        f"{server.name}: {seen} of {count} workers ready after {timeout:.0f} s "
        f"(no {marker!r} in {server.log_path})"
    )
    if strict:
        raise StackError(message)
    print(f"warning: {message}; measuring anyway", file=sys.stderr, flush=True)


class MemoryPeak:
    """Samples each server's resident memory (summed over its processes) in a thread.

    `peaks[name]` is the largest sum seen: the peak of the sum, where the VmHWM sum in
    `Memory` is only an upper bound of it.
    """

    def __init__(self, servers: dict[str, Server], interval: float = 0.5) -> None:
        self.servers = servers
        self.interval = interval
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-peak", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sample()

    def sample(self) -> None:
        for name, server in list(self.servers.items()):
            rss = server.memory().rss_kb
            self.peaks[name] = max(self.peaks.get(name, 0), rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


def _stop(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
    # Workers outliving their master would still be in the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of stat (utime, stime), counted after the command name.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _proc_status(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(value.split()[0])
    return values
