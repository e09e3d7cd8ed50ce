"""Per-call cgroups for the code sandbox: one memory and one process cap on the whole
process tree of a call, however many processes it forks.

The tree is found from the service's own cgroup (``/proc/self/cgroup``) and used only
where it is writable: a container's cgroup namespace, a systemd unit with
``Delegate=yes``, or a root service on a host with cgroup v1 memory and pids
hierarchies. cgroup v2 is preferred; v1 is used on hybrid hosts whose memory and pids
controllers are bound to v1. Without either, the sandbox falls back to an rlimit budget
(tools/sandbox.py).

cgroup v2 layout, below the service's own cgroup B::

    B/                     memory and pids enabled for its children
    B/llmwrapper-service/  the service's processes, moved here when enabling the
                           controllers needs it: a v2 cgroup that enables controllers for
                           its children may not hold processes itself
    B/llmsandbox-<hex>/    one per running call: memory.max, memory.swap.max=0,
                           memory.oom.group=1, pids.max; removed after the call

cgroup v1 uses ``llmsandbox-<hex>`` below the service's cgroup in each of the memory
and pids hierarchies (v1 has no rule against processes beside child cgroups).
"""

from __future__ import annotations

import abc
import contextlib
import errno
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CALL_PREFIX = "llmsandbox-"
SERVICE_LEAF = "llmwrapper-service"
_NEEDED = ("memory", "pids")
_STALE_AFTER_S = 600.0  # older empty call cgroups are leftovers of a killed service process


class CgroupError(Exception):
    """Per-call cgroups cannot be used here (the message says why)."""


@dataclass(frozen=True)
class CallEvents:
    """What the kernel counted for one call's cgroup."""

    oom_kills: int = 0
    pids_limit_hits: int = 0


def _read(path: Path) -> str:
    return path.read_text()


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _counter(path: Path, key: str) -> int:
    """The value of ``key`` in a flat-keyed cgroup file (``memory.events``, ...)."""
    with contextlib.suppress(OSError):
        for line in _read(path).splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


class CallCgroup:
    """The cgroup (one directory per hierarchy) of one running call."""

    def __init__(self, memory_dir: Path, pids_dir: Path) -> None:
        self.memory_dir = memory_dir
        self.pids_dir = pids_dir
        self.dirs = tuple(dict.fromkeys((memory_dir, pids_dir)))  # one dir on cgroup v2

    def attach(self, pid: int) -> None:
        """Move process ``pid`` (and its threads) into the call's cgroup."""
        for directory in self.dirs:
            _write(directory / "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        found: set[int] = set()
        for directory in self.dirs:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in _read(directory / "cgroup.procs").split())
        return sorted(found)

    def events(self) -> CallEvents:
        if self.memory_dir == self.pids_dir:  # v2
            oom = _counter(self.memory_dir / "memory.events", "oom_kill")
        else:
            oom = _counter(self.memory_dir / "memory.oom_control", "oom_kill")
        return CallEvents(oom, _counter(self.pids_dir / "pids.events", "max"))

    def remove(self, grace_s: float = 3.0) -> bool:
        """Kill whatever is left in the cgroup and remove it; False if it stayed."""
        deadline = time.monotonic() + grace_s
        kill_file = self.memory_dir / "cgroup.kill"
        with contextlib.suppress(OSError):
            if kill_file.exists():
                _write(kill_file, "1")
        for directory in self.dirs:
            while True:
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        return False
                for pid in self.pids():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.01)
        return True


class CgroupTree(abc.ABC):
    """Where the calls' cgroups of this service are created."""

    version: int

    def __init__(self, memory_base: Path, pids_base: Path) -> None:
        self.memory_base = memory_base
        self.pids_base = pids_base

    def describe(self) -> str:
        return f"cgroup v{self.version} below {self.memory_base}"

    def create(self, memory_bytes: int, max_pids: int) -> CallCgroup:
        name = CALL_PREFIX + uuid.uuid4().hex[:16]
        call = CallCgroup(self.memory_base / name, self.pids_base / name)
        try:
            for directory in call.dirs:
                os.mkdir(directory, 0o755)
            self._limit(call, memory_bytes, max_pids)
        except OSError as exc:
            call.remove(grace_s=0)
            raise CgroupError(f"cannot create a call's cgroup: {exc}") from exc
        return call

    def calls(self) -> list[Path]:
        """Call cgroups that exist now (of any process of this service)."""
        found: list[Path] = []
        for base in dict.fromkeys((self.memory_base, self.pids_base)):
            found += sorted(base.glob(CALL_PREFIX + "*"))
        return found

    def sweep(self) -> None:
        """Remove empty call cgroups that a killed service process left behind."""
        now = time.time()
        for directory in self.calls():
            with contextlib.suppress(OSError):
                if now - directory.stat().st_mtime > _STALE_AFTER_S:
                    os.rmdir(directory)  # refused (EBUSY) while processes are in it

    @abc.abstractmethod
    def _limit(self, call: CallCgroup, memory_bytes: int, max_pids: int) -> None:
        """Write the call's memory and process limits (per cgroup version)."""


class _V2Tree(CgroupTree):
    version = 2

    def _limit(self, call: CallCgroup, memory_bytes: int, max_pids: int) -> None:
        directory = call.memory_dir
        _write(directory / "memory.max", str(memory_bytes))
        if (directory / "memory.swap.max").exists():
            _write(directory / "memory.swap.max", "0")
        if (directory / "memory.oom.group").exists():
            _write(directory / "memory.oom.group", "1")  # an OOM kill ends the whole call
        _write(directory / "pids.max", str(max_pids))

    def enable(self) -> None:
        """Enable memory and pids for the children of the base cgroup, moving the
        processes it holds into a leaf first when the kernel asks for that."""
        control = self.memory_base / "cgroup.subtree_control"
        for _ in range(5):
            if set(_NEEDED) <= set(_read(control).split()):
                return
            try:
                _write(control, " ".join(f"+{c}" for c in _NEEDED))
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise CgroupError(f"cannot enable memory and pids in {control}: {exc}") from exc
            self._move_processes_to_leaf()
        raise CgroupError(f"{self.memory_base} keeps holding processes; cannot enable controllers")

    def _move_processes_to_leaf(self) -> None:
        leaf = self.memory_base / SERVICE_LEAF
        with contextlib.suppress(FileExistsError):
            os.mkdir(leaf, 0o755)
        for pid in _read(self.memory_base / "cgroup.procs").split():
            with contextlib.suppress(ProcessLookupError):
                _write(leaf / "cgroup.procs", pid)


class _V1Tree(CgroupTree):
    version = 1

    def _limit(self, call: CallCgroup, memory_bytes: int, max_pids: int) -> None:
        directory = call.memory_dir
        _write(directory / "memory.limit_in_bytes", str(memory_bytes))
        if (directory / "memory.memsw.limit_in_bytes").exists():  # memory + swap: no swap
            _write(directory / "memory.memsw.limit_in_bytes", str(memory_bytes))
        _write(call.pids_dir / "pids.max", str(max_pids))


@dataclass(frozen=True)
class _Mount:
    root: str  # the cgroup path the mount shows at its mount point
    point: Path
    options: frozenset[str]


def _mounts(proc: Path) -> dict[str, _Mount]:
    """cgroup mounts by controller name; the v2 mount under ``""``."""
    found: dict[str, _Mount] = {}
    for line in _read(proc / "mountinfo").splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, super_options = fields[sep + 1], fields[sep + 3].split(",")
        point = Path(fields[4].replace("\\040", " "))
        if fstype == "cgroup2":
            found.setdefault("", _Mount(fields[3], point, frozenset()))
        elif fstype == "cgroup":
            for option in super_options:
                found.setdefault(option, _Mount(fields[3], point, frozenset(super_options)))
    return found


def _own_paths(proc: Path) -> dict[str, str]:
    """This process's cgroup path by controller (``""`` for cgroup v2)."""
    paths: dict[str, str] = {}
    for line in _read(proc / "cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _resolve(mount: _Mount, path: str) -> Path:
    root = mount.root.rstrip("/")
    if root and path != root and not path.startswith(root + "/"):
        raise CgroupError(f"the service's cgroup {path} is outside the mount at {mount.point}")
    return mount.point / path[len(root) :].lstrip("/")


def _writable(directory: Path, *files: str) -> bool:
    return os.access(directory, os.W_OK) and all(
        os.access(directory / name, os.W_OK) for name in files
    )


def _detect_v2(mounts: dict[str, _Mount], own: dict[str, str]) -> CgroupTree:
    if "" not in mounts or "" not in own:
        raise CgroupError("no cgroup v2 hierarchy")
    base = _resolve(mounts[""], own[""])
    if base.name == SERVICE_LEAF:  # moved there by this or a sibling service process
        base = base.parent
    offered = set(_read(base / "cgroup.controllers").split())
    missing = [c for c in _NEEDED if c not in offered]
    if missing:
        raise CgroupError(f"cgroup v2 at {base} does not offer {' and '.join(missing)}")
    if not _writable(base, "cgroup.subtree_control", "cgroup.procs"):
        raise CgroupError(f"cgroup v2 at {base} is not writable by the service")
    if own[""] != "/" and not _delegated():
        # Writable is not delegated (a root process can write any cgroup): enabling
        # controllers moves every process of the cgroup into a leaf, which is only ours
        # to do in a container's own namespace or a unit delegated to the service.
        raise CgroupError(
            f"cgroup v2 at {base} is not the root of a cgroup namespace; set "
            "SANDBOX_CGROUP_DELEGATED=true if it is delegated to the service (Delegate=yes)"
        )
    tree = _V2Tree(base, base)
    tree.enable()
    return tree


def _delegated() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "SANDBOX_CGROUP_DELEGATED", False))


def _detect_v1(mounts: dict[str, _Mount], own: dict[str, str]) -> CgroupTree:
    bases = []
    for controller in _NEEDED:
        if controller not in mounts or controller not in own:
            raise CgroupError(f"no cgroup v1 {controller} hierarchy")
        base = _resolve(mounts[controller], own[controller])
        if not _writable(base, "cgroup.procs"):
            raise CgroupError(f"cgroup v1 {controller} at {base} is not writable by the service")
        bases.append(base)
    return _V1Tree(bases[0], bases[1])


def detect(proc: Path = Path("/proc/self")) -> CgroupTree:
    """The writable cgroup tree below the service's own cgroup, or CgroupError."""
    try:
        mounts, own = _mounts(proc), _own_paths(proc)
    except (OSError, ValueError, IndexError) as exc:
        raise CgroupError(f"cannot read this process's cgroups: {exc}") from exc
    reasons = []
    for find in (_detect_v2, _detect_v1):
        try:
            tree = find(mounts, own)
        except (CgroupError, OSError) as exc:
            reasons.append(str(exc))
            continue
        tree.sweep()
        return tree
    raise CgroupError("; ".join(reasons))
