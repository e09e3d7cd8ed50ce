"""The sandbox's security guarantees, each tested by trying to break it.

Every escape test runs the attack inside the sandbox and then checks the HOST for the
effect (file created, secret returned, connection received), so a broken guarantee
fails the test rather than just changing an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import resource
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from tools.errors import (
    SandboxExecutionError,
    SandboxLimitError,
    SandboxTimeoutError,
    SandboxUnavailableError,
)
from tools.sandbox import Sandbox, SandboxLimits, uid_processes

LIMITS = SandboxLimits(
    timeout_s=2, cpu_s=2, memory_mb=128, output_bytes=16_000, max_procs=8, tmp_size_mb=4
)
_SANDBOX = Sandbox(limits=LIMITS, max_concurrent=4)
_OK, _REASON = _SANDBOX.available()
pytestmark = pytest.mark.skipif(not _OK, reason=f"sandbox unavailable here: {_REASON}")

PROJECT_FILE = Path(__file__).resolve()
REPO_FILE = PROJECT_FILE.parents[2] / "pyproject.toml"


@pytest.fixture
def sandbox() -> Sandbox:
    return _SANDBOX


def _host_root_line() -> str:
    lines = Path("/etc/passwd").read_text().splitlines()
    return next(line for line in lines if line.startswith("root:"))


def _sandbox_processes(sandbox: Sandbox) -> list:
    """Host processes that belong to a sandbox: by pool uid, and by the runner's argv."""
    found = []
    for uid in sandbox.uids or ():
        found += uid_processes(uid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"/sandbox/runner.py" in (entry / "cmdline").read_bytes():
                    found.append(entry.name)
            except OSError:
                pass
    return found


async def test_function_returns_its_result(sandbox):
    code = "def weather_function(location):\n    return f'Weather in {location}: Sunny'\n"
    assert await sandbox.run(code, {"location": "Paris"}) == "Weather in Paris: Sunny"


async def test_named_function_async_function_and_unserializable_result(sandbox):
    code = "def helper():\n    return 1\n\ndef main(n):\n    return {'n': n + helper(), 's': {1}}\n"
    assert await sandbox.run(code, {"n": 1}, function_name="main") == {"n": 2, "s": "{1}"}
    assert await sandbox.run("async def f(x):\n    return x * 2\n", {"x": 21}) == 42
    with pytest.raises(SandboxExecutionError, match="exactly one"):
        await sandbox.run(code, {"n": 1})


async def test_user_exception_is_reported_without_internal_paths(sandbox):
    with pytest.raises(SandboxExecutionError) as info:
        await sandbox.run("def f():\n    raise ValueError('boom')\n", {})
    assert str(info.value) == "ValueError: boom"
    assert info.value.details == {"exception_type": "ValueError"}
    with pytest.raises(SandboxExecutionError, match="SyntaxError"):
        await sandbox.run("def f(:\n", {})


async def test_project_files_are_not_visible(sandbox):
    for path in (PROJECT_FILE, REPO_FILE, Path("/work/main/manage.py")):
        code = f"def f():\n    return open({str(path)!r}).read()\n"
        with pytest.raises(SandboxExecutionError, match="FileNotFoundError"):
            await sandbox.run(code, {})


async def test_host_passwd_is_not_visible(sandbox):
    code = "def f():\n    return open('/etc/passwd').read()\n"
    try:
        content = await sandbox.run(code, {})
    except SandboxExecutionError:
        return
    assert _host_root_line() not in content


async def test_service_environment_is_not_visible(sandbox, monkeypatch):
    canary = f"canary-{uuid.uuid4()}"
    monkeypatch.setenv("LLMWRAPPER_SECRET_CANARY", canary)
    code = (
        "import os\n"
        "def f():\n"
        "    seen = [repr(dict(os.environ))]\n"
        "    for pid in os.listdir('/proc'):\n"
        "        if pid.isdigit():\n"
        "            try:\n"
        "                seen.append(open(f'/proc/{pid}/environ', 'rb').read().decode())\n"
        "            except OSError as exc:\n"
        "                seen.append(repr(exc))\n"
        "    seen.append(open('/proc/self/environ', 'rb').read().decode())\n"
        "    return '\\n'.join(seen)\n"
    )
    seen = await sandbox.run(code, {})
    assert canary not in seen
    assert "LLMWRAPPER_SECRET_CANARY" not in seen


async def test_writes_outside_scratch_do_not_reach_the_host(sandbox):
    marker = f"pwned-{uuid.uuid4().hex}"
    targets = [f"/work/main/{marker}", f"/usr/{marker}", f"/{marker}", f"/tmp/{marker}"]
    code = (
        "def f(targets):\n"
        "    out = {}\n"
        "    for t in targets:\n"
        "        try:\n"
        "            open(t, 'w').write('x')\n"
        "            out[t] = 'written'\n"
        "        except OSError as exc:\n"
        "            out[t] = type(exc).__name__\n"
        "    return out\n"
    )
    result = await sandbox.run(code, {"targets": targets})
    assert result[f"/tmp/{marker}"] == "written"  # the scratch tmpfs works...
    for target in targets:
        assert not Path(target).exists()  # ...and nothing reached the host


async def test_scratch_is_size_limited(sandbox):
    code = "def f():\n    open('/tmp/big', 'wb').write(b'x' * (8 * 1024 * 1024))\n"
    with pytest.raises(SandboxExecutionError, match=r"OSError|too large|No space"):
        await sandbox.run(code, {})


SHELL_ESCAPES = {
    "os_system": "import os\ndef f(m):\n    return os.system(f'touch {m}')\n",
    "subprocess_shell": (
        "import subprocess\n"
        "def f(m):\n"
        "    try:\n"
        "        return subprocess.run(f'touch {m}', shell=True).returncode\n"
        "    except OSError as exc:\n"
        "        return repr(exc)\n"
    ),
    "subprocess_python": (
        "import subprocess, sys\n"
        "def f(m):\n"
        "    return subprocess.run([sys.executable, '-c', f'open({m!r}, \"w\")']).returncode\n"
    ),
    "dunder_walk": (
        "def f(m):\n"
        "    classes = ().__class__.__base__.__subclasses__()\n"
        "    popen = next(c for c in classes if c.__name__ == 'Popen')\n"
        "    wrap = next(c for c in classes if c.__name__ == '_wrap_close')\n"
        "    out = [wrap.__init__.__globals__['system'](f'touch {m}')]\n"
        "    try:\n"
        "        out.append(popen(['/bin/sh', '-c', f'touch {m}']).wait())\n"
        "    except OSError as exc:\n"
        "        out.append(repr(exc))\n"
        "    return out\n"
    ),
}


@pytest.mark.parametrize("name", sorted(SHELL_ESCAPES))
async def test_processes_started_inside_have_no_host_effect(sandbox, name, tmp_path):
    marker = tmp_path / f"escaped-{name}"
    host_tmp_marker = Path(f"/tmp/escaped-{uuid.uuid4().hex}")
    for target in (marker, host_tmp_marker):
        with contextlib.suppress(SandboxExecutionError):
            await sandbox.run(SHELL_ESCAPES[name], {"m": str(target)})
        assert not target.exists()


@pytest.fixture
def host_listener():
    """A TCP server on the host's loopback that records any connection it gets."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    hits: list = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                hits.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], hits
    stop.set()
    thread.join()
    server.close()


async def test_no_network_not_even_loopback_or_unix_sockets(sandbox, host_listener, tmp_path):
    port, hits = host_listener
    unix_path = tmp_path / "service.sock"
    unix_server = socket.socket(socket.AF_UNIX)
    unix_server.bind(str(unix_path))
    unix_server.listen()
    code = (
        "import socket\n"
        "def f(port, unix_paths):\n"
        "    out = {}\n"
        "    for host, p in [('127.0.0.1', port), ('127.0.0.1', 5432), ('127.0.0.1', 6379),\n"
        "                    ('::1', port), ('10.0.0.1', 80)]:\n"
        "        try:\n"
        "            socket.create_connection((host, p), timeout=0.5)\n"
        "            out[f'{host}:{p}'] = 'connected'\n"
        "        except OSError as exc:\n"
        "            out[f'{host}:{p}'] = exc.errno\n"
        "    for path in unix_paths:\n"
        "        s = socket.socket(socket.AF_UNIX)\n"
        "        try:\n"
        "            s.connect(path)\n"
        "            out[path] = 'connected'\n"
        "        except OSError as exc:\n"
        "            out[path] = exc.errno\n"
        "    return out\n"
    )
    unix_paths = [str(unix_path), "/var/run/postgresql/.s.PGSQL.5432", "/run/redis/redis.sock"]
    result = await sandbox.run(code, {"port": port, "unix_paths": unix_paths})
    unix_server.close()
    assert "connected" not in result.values(), result
    assert result[f"127.0.0.1:{port}"] == 97  # EAFNOSUPPORT: refused by the seccomp filter
    assert hits == []


async def test_seccomp_and_namespaces_are_in_force(sandbox):
    code = (
        "import ctypes, os\n"
        "def f():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    status = open('/proc/self/status').read()\n"
        "    return {\n"
        "        'unshare_user': (libc.unshare(0x10000000), ctypes.get_errno()),\n"
        "        'seccomp': [l for l in status.splitlines() if l.startswith('Seccomp:')],\n"
        "        'uid': os.getuid(),\n"
        "        'pids': sorted(p for p in os.listdir('/proc') if p.isdigit()),\n"
        "    }\n"
    )
    result = await sandbox.run(code, {})
    assert result["unshare_user"] == [-1, 1]  # EPERM
    assert result["seccomp"] == ["Seccomp:\t2"]
    assert result["uid"] == 65534
    assert result["pids"] == ["1"]  # own pid namespace: the host's processes are invisible


async def test_infinite_loop_is_killed_on_time(sandbox):
    started = time.monotonic()
    with pytest.raises(SandboxTimeoutError):
        await sandbox.run("def f():\n    while True:\n        pass\n", {})
    assert time.monotonic() - started < LIMITS.timeout_s + 1.5
    assert _sandbox_processes(sandbox) == []


async def test_memory_bomb_is_stopped(sandbox):
    code = "def f():\n    blocks = []\n    while True:\n        blocks.append(bytearray(10**7))\n"
    with pytest.raises(SandboxLimitError, match="memory"):
        await sandbox.run(code, {})
    with pytest.raises(SandboxLimitError, match="memory"):
        await sandbox.run("def f():\n    return len(bytearray(10**9))\n", {})


async def test_process_count_is_capped_per_call(sandbox):
    code = (
        "import os, time\n"
        "def f():\n"
        "    started = 0\n"
        "    while started < 100:\n"
        "        try:\n"
        "            pid = os.fork()\n"
        "        except OSError:\n"
        "            return started\n"
        "        if pid == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        started += 1\n"
        "    return started\n"
    )
    started = await sandbox.run(code, {})
    assert started < LIMITS.max_procs
    assert _sandbox_processes(sandbox) == []  # the sleeping children died with the call


FORK_BOMB = """
import os
def f(x):
    while True:
        try:
            os.fork()
        except OSError:
            pass
"""
NORMAL = "def f(x):\n    return x + 1\n"


async def test_fork_bomb_is_contained_and_does_not_starve_other_calls(sandbox):
    finished: dict[str, float] = {}

    async def timed(name: str, code: str, delay: float) -> int:
        await asyncio.sleep(delay)
        try:
            return await sandbox.run(code, {"x": 1})
        finally:
            finished[name] = time.monotonic()

    bomb, other = await asyncio.gather(
        timed("bomb", FORK_BOMB, 0),
        timed("other", NORMAL, 0.7),  # well inside the bomb's lifetime
        return_exceptions=True,
    )
    assert isinstance(bomb, (SandboxTimeoutError, SandboxLimitError)), bomb
    assert other == 2
    assert finished["other"] < finished["bomb"]  # ran alongside, not queued behind it
    assert await sandbox.run(NORMAL, {"x": 2}) == 3
    assert _sandbox_processes(sandbox) == []


async def test_endless_output_is_capped_while_reading(sandbox):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SandboxLimitError, match="more than"):
        await sandbox.run("def f():\n    while True:\n        print('x' * 1000)\n", {})
    with pytest.raises(SandboxLimitError, match="more than"):
        await sandbox.run("def f():\n    return 'x' * 10**6\n", {})
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 50_000


async def test_calls_queue_beyond_max_concurrent(sandbox):
    small = Sandbox(limits=LIMITS, max_concurrent=2)
    results = await asyncio.gather(*(small.run(NORMAL, {"x": i}) for i in range(5)))
    assert results == [1, 2, 3, 4, 5]


def test_unavailable_sandbox_refuses_instead_of_running_unsandboxed(tmp_path):
    marker = tmp_path / "ran"
    broken = Sandbox(python="/nonexistent/python3")
    ok, reason = broken.available()
    assert not ok and reason
    with pytest.raises(SandboxUnavailableError):
        broken.run_sync(f"def f():\n    open({str(marker)!r}, 'w')\n", {})
    assert not marker.exists()


def test_service_process_is_unharmed():
    quick = Sandbox(limits=dataclasses.replace(LIMITS, timeout_s=0.5))
    assert quick.run_sync(NORMAL, {"x": 0}) == 1  # probe and warm up before counting fds
    fds_before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(SandboxTimeoutError):
            quick.run_sync("def f():\n    while True:\n        pass\n", {})
    assert quick.run_sync(NORMAL, {"x": 0}) == 1
    assert len(os.listdir("/proc/self/fd")) == fds_before  # no leaked pipes or memfds
    assert _sandbox_processes(_SANDBOX) == []


def test_cpu_time_limit_stops_a_busy_function_before_the_wall_clock_limit():
    cpu_bound = Sandbox(limits=dataclasses.replace(LIMITS, cpu_s=1, timeout_s=10))
    started = time.monotonic()
    with pytest.raises(SandboxTimeoutError, match="CPU time"):
        cpu_bound.run_sync(
            "def f():\n    try:\n        while True:\n            pass\n"
            "    except Exception:\n        return 'swallowed'\n",
            {},
        )
    assert time.monotonic() - started < 4
