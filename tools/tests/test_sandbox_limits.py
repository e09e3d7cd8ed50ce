"""A code call's memory and processes are bounded in total, over every process it forks.

Through the running service (uvicorn in a thread) and its function execute API, in both
ways the sandbox enforces the total: a cgroup per call (skipped where the service's
cgroup tree is not writable) and the rlimit budget (tested everywhere). Memory held by a
call is measured from the host, on the call's own processes.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from tenants.services import api_key_create
from tools import runtime
from tools.sandbox import Sandbox, SandboxLimits
from tools.sandbox_cgroup import SERVICE_LEAF

MB = 1024 * 1024
TOTAL_MB = 256

_PROBE_LIMITS = SandboxLimits(timeout_s=10)
_SANDBOX_OK, _SANDBOX_REASON = Sandbox(limits=_PROBE_LIMITS).available()
_CGROUP_OK, _CGROUP_REASON = Sandbox(limits=_PROBE_LIMITS, limit_mode="cgroup").available()

pytestmark = pytest.mark.skipif(
    not _SANDBOX_OK, reason=f"the sandbox is unavailable here: {_SANDBOX_REASON}"
)
needs_cgroups = pytest.mark.skipif(
    not _CGROUP_OK, reason=f"per-call cgroups cannot be used here: {_CGROUP_REASON}"
)
MODES = [pytest.param("cgroup", marks=needs_cgroups), "rlimit"]

# Six children that each fill 100 MB (touched, so it is really held), the parent waiting
# for them; forking stops quietly where the process cap refuses more children.
SIX_HUNGRY_CHILDREN = """
import os, time
def hog():
    children = []
    for _ in range(6):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            block = b"x" * (100 * 1024 * 1024)
            # Held a while, so that the children's blocks are taken at the same time
            # however the processor schedules them.
            time.sleep(1)
            os._exit(0 if block else 1)
        children.append(pid)
    return [os.waitpid(pid, 0)[1] for pid in children]
"""

# Children that each take as much as they are given, up to 100 MB in 8 MB steps, and hold
# it while the host measures; the parent answers once all of them are ready.
GREEDY_HOLDERS = """
import os, time
def hold():
    ready_r, ready_w = os.pipe()
    children = []
    for _ in range(6):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            blocks = []
            try:
                while len(blocks) < 12:
                    blocks.append(b"x" * (8 * 1024 * 1024))
            except MemoryError:
                pass
            os.write(ready_w, bytes([len(blocks)]))
            time.sleep(1.5)
            os._exit(0)
        children.append(pid)
    held = [os.read(ready_r, 1)[0] * 8 for _ in children]
    time.sleep(1)
    for pid in children:
        os.waitpid(pid, 0)
    return held
"""

FORK_BOMB = """
import os
def bomb():
    while True:
        try:
            os.fork()
        except OSError:
            pass
"""

WITHIN_LIMITS = """
import os
def modest(n):
    children = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            block = b"x" * (20 * 1024 * 1024)
            os._exit(0 if len(block) else 1)
        children.append(pid)
    return sum(os.waitpid(pid, 0)[1] for pid in children) + 20 * n
"""

SLEEPER = "import time\ndef nap():\n    time.sleep(1.5)\n    return 'rested'\n"
ADD_ONE = "def add(x):\n    return x + 1\n"


class Service:
    """The running service, with an admin key to register functions."""

    def __init__(self, url: str) -> None:
        _, key = api_key_create(name="sandbox-limits-admin")
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def register(self, name: str, code: str) -> None:
        response = self.http.post("/api/v1/functions/register", json={"name": name, "code": code})
        assert response.status_code == 201, response.text

    def execute(self, name: str, **arguments: object) -> httpx.Response:
        return self.http.post(f"/api/v1/functions/{name}/execute", json={"arguments": arguments})

    def still_fine(self) -> None:
        assert self.http.get("/health").status_code == 200
        self.register("add", ADD_ONE)
        response = self.execute("add", x=41)
        assert response.status_code == 200, response.text
        assert response.json()["result"] == 42


def _sandbox_for(settings, mode: str, **overrides: object) -> Sandbox:
    settings.SANDBOX_LIMIT_MODE = mode
    settings.SANDBOX_MEMORY_MB = TOTAL_MB
    settings.SANDBOX_MAX_PROCS = 16
    settings.SANDBOX_FALLBACK_MAX_PROCS = 4
    settings.SANDBOX_TIMEOUT = 4.0
    for name, value in overrides.items():
        setattr(settings, name, value)
    runtime.sandbox.cache_clear()
    return runtime.sandbox()


@pytest.fixture(autouse=True)
def _fresh_service_sandbox():
    """The service's sandbox is rebuilt from the settings a test sets, and again after."""
    runtime.sandbox.cache_clear()
    yield
    runtime.sandbox.cache_clear()


@pytest.fixture
def service(live_server_url):
    service = Service(live_server_url)
    yield service
    service.http.close()


@pytest.fixture(params=MODES)
def mode_sandbox(request, settings) -> Sandbox:
    sandbox = _sandbox_for(settings, request.param)
    ok, reason = sandbox.available()
    assert ok, reason
    assert sandbox.bound is not None and sandbox.bound.kind == request.param
    return sandbox


def test_six_children_of_100_mb_exceed_a_256_mb_total(service, mode_sandbox):
    service.register("hog", SIX_HUNGRY_CHILDREN)
    response = service.execute("hog")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "sandbox_limit_exceeded"
    assert error["details"] == {"limit": "memory", "memory_mb": TOTAL_MB}
    service.still_fine()


def test_a_call_within_its_limits_still_works(service, mode_sandbox):
    service.register("modest", WITHIN_LIMITS)
    response = service.execute("modest", n=3)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == 60


def _call_processes() -> list[int]:
    """The sandboxed processes of the calls this process runs: the descendants of its
    bubblewrap children, bubblewrap itself left out (the service's helper, outside the
    sandbox and its limits)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            head, tail = stat.rsplit(")", 1)
            parents[int(entry.name)] = int(tail.split()[1])
            names[int(entry.name)] = head.split("(", 1)[1]
    own = os.getpid()
    frontier = [pid for pid, ppid in parents.items() if ppid == own and names[pid] == "bwrap"]
    found: list[int] = []
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def _rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def test_the_rlimit_budget_bounds_what_a_call_holds_in_total(service, settings):
    sandbox = _sandbox_for(settings, "rlimit")
    assert sandbox.bound is not None and sandbox.bound.kind == "rlimit"
    service.register("hold", GREEDY_HOLDERS)
    peak = {"rss": 0, "processes": 0}
    done = threading.Event()

    def measure() -> None:
        while not done.is_set():
            pids = _call_processes()
            peak["rss"] = max(peak["rss"], _rss_bytes(pids))
            peak["processes"] = max(peak["processes"], len(pids))
            time.sleep(0.02)

    watcher = threading.Thread(target=measure)
    watcher.start()
    try:
        response = service.execute("hold")
    finally:
        done.set()
        watcher.join()
    assert response.status_code == 200, response.text
    held = response.json()["result"]
    assert held and sum(held) <= TOTAL_MB  # as the children saw it...
    assert 0 < peak["rss"] <= TOTAL_MB * MB  # ...and as the host saw it
    assert peak["processes"] <= settings.SANDBOX_FALLBACK_MAX_PROCS
    service.still_fine()


def test_a_fork_bomb_is_stopped_and_the_next_call_runs(service, mode_sandbox):
    service.register("bomb", FORK_BOMB)
    response = service.execute("bomb")
    error = response.json()["error"]
    if mode_sandbox.bound.kind == "cgroup":
        # The cgroup's pids counter saw the cap refuse forks: that is what stopped it.
        assert response.status_code == 422, response.text
        assert error["type"] == "sandbox_limit_exceeded"
        assert error["details"] == {"limit": "processes", "max_procs": 16}
    else:  # the process cap holds it until the deadline
        assert response.status_code in (422, 504), response.text
        assert error["type"] in ("sandbox_limit_exceeded", "sandbox_timeout")
    assert _call_processes() == []
    service.still_fine()


@needs_cgroups
def test_each_call_runs_in_its_own_cgroup_which_is_gone_afterwards(service, settings):
    sandbox = _sandbox_for(settings, "cgroup")
    tree = sandbox.bound.tree
    service.register("nap", SLEEPER)
    service.register("hog", SIX_HUNGRY_CHILDREN)
    seen: dict[Path, set[int]] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            runners = set(_call_processes())
            for directory in tree.calls():
                try:
                    procs = {int(p) for p in (directory / "cgroup.procs").read_text().split()}
                except OSError:
                    continue
                if procs & runners:  # a cgroup of this process's calls
                    seen.setdefault(directory, set()).update(procs)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert service.execute("nap").json()["result"] == "rested"
        assert service.execute("hog").status_code == 422
    finally:
        done.set()
        watcher.join()
    assert len({directory.name for directory in seen}) >= 2, seen  # one cgroup per call...
    for directory in seen:
        assert not directory.exists()  # ...removed once its call ended
        assert not (tree.pids_base / directory.name).exists()
        assert not (tree.memory_base / directory.name).exists()


def test_refuses_calls_when_no_total_bound_can_be_enforced(service, settings, tmp_path):
    marker = tmp_path / "ran"
    service.register("touch", f"def touch():\n    open({str(marker)!r}, 'w')\n")
    _sandbox_for(settings, "unbounded")  # not a mode: refused rather than guessed
    response = service.execute("touch")
    assert response.status_code == 503, response.text
    assert "unknown limit mode" in response.json()["error"]["message"]
    # 64 MB over 4 processes leaves 16 MB each: too little for the interpreter.
    sandbox = _sandbox_for(settings, "rlimit", SANDBOX_MEMORY_MB=64)
    ok, reason = sandbox.available()
    assert not ok and "rlimit budget" in reason
    response = service.execute("touch")
    assert response.status_code == 503, response.text
    assert response.json()["error"]["type"] == "sandbox_unavailable"
    assert not marker.exists()
    # The operator's opt-out: per-process limits only, no total.
    sandbox = _sandbox_for(settings, "per_process", SANDBOX_MEMORY_MB=64)
    assert sandbox.available()[0] and sandbox.bound.kind == "per_process"
    service.still_fine()


@needs_cgroups
def test_cgroup_v2_service_processes_move_to_a_leaf(settings):
    sandbox = _sandbox_for(settings, "cgroup")
    tree = sandbox.bound.tree
    if tree.version != 2:
        pytest.skip(f"the cgroup tree here is v{tree.version}, which has no internal-process rule")
    enabled = (tree.memory_base / "cgroup.subtree_control").read_text().split()
    assert {"memory", "pids"} <= set(enabled)
    assert (tree.memory_base / "cgroup.procs").read_text().split() == []
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    own = next(line for line in lines if line.startswith("0::"))
    assert own.rsplit("/", 1)[1] == SERVICE_LEAF
