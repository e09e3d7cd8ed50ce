"""Run untrusted Python functions under bubblewrap, one fresh process per call.

Layers, outermost first (the README's "Code sandbox" section lists the guarantees):
a uid of its own per running call (when the service is root), every namespace unshared,
a read-only root with only a Python interpreter, its stdlib and the system shared
libraries, a small tmpfs as /tmp, an empty environment, a seccomp filter
(tools/seccomp.py), rlimits applied by the runner (tools/sandbox_runner.py) before any
user code, a wall-clock deadline and an output cap enforced while reading.

A call's memory and process count are bounded in total, over all the processes it forks:
by a cgroup of its own where the service's cgroup tree is writable
(tools/sandbox_cgroup.py), otherwise by an rlimit budget, each process getting an equal
share of the memory under a small process cap. Where neither can be enforced, calls are
refused unless the operator chose per-process limits only (``limit_mode``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import functools
import json
import logging
import os
import pwd
import selectors
import shutil
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.errors import (
    SandboxExecutionError,
    SandboxLimitError,
    SandboxTimeoutError,
    SandboxUnavailableError,
    ToolInputError,
)
from tools.sandbox_cgroup import CallCgroup, CallEvents, CgroupError
from tools.sandbox_limits import LIMIT_MODES, SandboxLimits, TotalBound, choose_bound
from tools.seccomp import SeccompUnsupportedError, build_filter

logger = logging.getLogger(__name__)

RUNNER_PATH = Path(__file__).with_name("sandbox_runner.py")
SCRATCH = "/tmp"  # noqa: S108 - the sandbox's own size-limited tmpfs, not the host's
SANDBOX_UID = 65534  # "nobody" as seen from inside the sandbox
MAX_PAYLOAD_BYTES = 1_000_000
_KILL_GRACE_S = 3.0
_SIGKILL_EXIT = 128 + signal.SIGKILL

# Asks an interpreter where its standard library lives and which shared libraries it maps.
_PROBE = """
import json, os, sys
for name in ("_ctypes", "_ssl", "_hashlib", "_sqlite3", "zlib", "_lzma", "_bz2", "_decimal"):
    try: __import__(name)
    except Exception: pass
libs = {l.split()[-1] for l in open("/proc/self/maps") if ".so" in l and "/" in l}
print(json.dumps({"executable": os.path.realpath(sys.executable), "libs": sorted(libs),
                  "path": [p for p in sys.path if os.path.isdir(p)]}))
"""


def _reachable_by_others(path: str) -> bool:
    """Whether the uid bwrap runs as can read ``path``: bwrap resolves bind sources with
    its own permissions (pyenv's Python under /root, for instance, is out of reach)."""
    real = Path(path).resolve()
    if os.geteuid() != 0:
        return os.access(real, os.R_OK)  # bwrap runs as the service's own user
    parents_ok = all(parent.stat().st_mode & 0o001 for parent in real.parents)
    return real.exists() and parents_ok and bool(real.stat().st_mode & 0o004)


def _elf_interpreter(path: str) -> str | None:
    """The PT_INTERP (dynamic loader) path of a 64-bit little-endian ELF executable."""
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:
            return None
        (phoff,) = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        for index in range(phnum):
            f.seek(phoff + index * phentsize)
            p_type, _, p_offset, _, _, p_filesz = struct.unpack("<IIQQQQ", f.read(40))
            if p_type == 3:
                f.seek(p_offset)
                return f.read(p_filesz).rstrip(b"\0").decode()
    return None


def _find_interpreter() -> str | None:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = getattr(sys, "_base_executable", None) or sys.executable
    # The service's own base interpreter (never the virtualenv) first, then the system's.
    for candidate in (base, f"/usr/local/bin/{version}", f"/usr/bin/{version}", "/usr/bin/python3"):
        if os.path.isfile(candidate) and _reachable_by_others(candidate):
            return os.path.realpath(candidate)
    return None


def _mount_args(python: str) -> list[str]:
    """bwrap arguments exposing ``python``, its stdlib and shared libraries read-only."""
    out = subprocess.run(  # noqa: S603 - trusted interpreter, fixed probe script
        [python, "-I", "-S", "-c", _PROBE], capture_output=True, env={}, timeout=30, check=True
    )
    info = json.loads(out.stdout)
    args = ["--ro-bind", info["executable"], info["executable"]]
    for directory in info["path"]:
        if not _reachable_by_others(directory):
            raise SandboxUnavailableError(f"{directory} is not readable by the sandbox user")
        args += ["--ro-bind", directory, directory]
        for hidden in ("site-packages", "dist-packages"):
            # Third-party packages of the host (and their secrets, if any) stay out.
            if os.path.isdir(os.path.join(directory, hidden)):
                args += ["--tmpfs", os.path.join(directory, hidden)]
    lib_dirs: set[str] = set()
    for lib in info["libs"]:
        if any(lib.startswith(d + os.sep) for d in info["path"]):
            continue
        if lib.startswith(("/usr/lib", "/lib")):
            lib_dirs.add(os.path.dirname(lib))  # system libraries, also ones dlopen()ed later
        else:
            args += ["--ro-bind", lib, lib]  # e.g. libpython next to a non-system install
    for directory in sorted(lib_dirs):
        args += ["--ro-bind", directory, directory]
    loader = _elf_interpreter(info["executable"])
    if loader:
        args += ["--ro-bind", loader, loader]
    args += ["--ro-bind-try", "/usr/share/zoneinfo", "/usr/share/zoneinfo"]
    return args


class _UidPool:
    """Host-wide pool of unprivileged uids, one per running call.

    A lock file per uid (flock: released by the kernel if the holder dies) keeps two calls,
    in this or another service process, from sharing a uid. So per-uid kernel accounting is
    never shared between calls, and everything a call left behind can be found and killed
    by its uid before the uid is used again.
    """

    def __init__(self, base: int, size: int, lock_dir: str) -> None:
        self.uids = range(base, base + size)
        self._lock_dir = lock_dir
        self._held: list[int] = []

    def check(self) -> None:
        with contextlib.suppress(FileExistsError):
            os.mkdir(self._lock_dir, 0o700)
        st = os.lstat(self._lock_dir)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise SandboxUnavailableError(f"{self._lock_dir} must be a directory only root writes")
        for uid in self.uids:
            with contextlib.suppress(KeyError):
                name = pwd.getpwuid(uid).pw_name
                if not name.startswith("llmsandbox"):
                    raise SandboxUnavailableError(f"sandbox uid {uid} belongs to user {name}")

    def acquire(self) -> tuple[int, int]:
        while True:
            for uid in self.uids:
                path = os.path.join(self._lock_dir, f"uid-{uid}.lock")
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                if kill_uid_processes(uid):  # leftovers of a crashed service process
                    return uid, fd
                self._quarantine(uid, fd)
            time.sleep(0.05)

    def release(self, uid: int, fd: int) -> None:
        if kill_uid_processes(uid):
            os.close(fd)
        else:
            self._quarantine(uid, fd)

    def _quarantine(self, uid: int, fd: int) -> None:
        # Unreaped zombies still count against the uid: keep holding its lock so that
        # no call uses it until this process exits.
        logger.error("sandbox uid %s still has processes; taking it out of rotation", uid)
        self._held.append(fd)


def uid_processes(uid: int) -> list[tuple[int, str]]:
    """(pid, state) of host processes whose real, effective or saved uid is ``uid``."""
    found = []
    wanted = str(uid).encode()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(os.path.join(entry.path, "status"), "rb") as f:
                    status = f.read()
            except OSError:
                continue
            start = status.find(b"\nUid:") + 5
            if wanted in status[start : status.find(b"\n", start)].split()[:3]:
                state = status[status.find(b"\nState:") + 7 :].split()[0]
                found.append((int(entry.name), state.decode()))
    return found


def kill_uid_processes(uid: int, grace_s: float = _KILL_GRACE_S) -> bool:
    """SIGKILL every process of ``uid``; True once none remains."""
    deadline = time.monotonic() + grace_s
    while found := uid_processes(uid):
        for pid, state in found:
            if state != "Z":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Sandbox:
    def __init__(
        self,
        *,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen, safe to share
        max_concurrent: int = 4,
        uid_base: int = 61000,
        uid_pool_size: int = 64,
        lock_dir: str = "/run/llmsandbox",
        python: str | None = None,
        limit_mode: str = "auto",
    ) -> None:
        self.limits = limits
        self.limit_mode = limit_mode
        self.max_concurrent = max_concurrent
        # 61000-61063: unallocated by Debian and systemd (whose DynamicUser range starts at
        # 61184). Only used when the service runs as root, which can switch to them.
        self._pool = _UidPool(uid_base, uid_pool_size, lock_dir) if os.geteuid() == 0 else None
        self._python = python
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_concurrent, thread_name_prefix="sandbox"
        )
        self._probe_lock = threading.Lock()
        self._status: tuple[bool, str] | None = None
        self._setup: _Setup | None = None
        self._bound: TotalBound | None = None

    @property
    def uids(self) -> range | None:
        return self._pool.uids if self._pool else None

    @property
    def bound(self) -> TotalBound | None:
        """How calls are bounded in total, once ``available()`` said yes."""
        return self._bound if self.available()[0] else None

    def available(self) -> tuple[bool, str]:
        with self._probe_lock:
            if self._status is None:
                self._status = self._probe()
            return self._status

    def _probe(self) -> tuple[bool, str]:
        if not sys.platform.startswith("linux"):
            return False, "the sandbox needs Linux"
        if self.limit_mode not in LIMIT_MODES:
            modes = ", ".join(LIMIT_MODES)
            return False, f"unknown limit mode {self.limit_mode!r} (one of {modes})"
        bwrap = shutil.which("bwrap") or "/usr/bin/bwrap"
        if not os.access(bwrap, os.X_OK):
            return False, "bubblewrap is not installed (apt-get install bubblewrap)"
        try:
            python = self._python or _find_interpreter()
            if python is None:
                return False, "no Python interpreter readable by the sandbox user"
            self._setup = _Setup(
                bwrap, python, _mount_args(python), build_filter(), RUNNER_PATH.read_bytes()
            )
            if self._pool:
                self._pool.check()
            result = self._probe_bound()
        except (SandboxUnavailableError, SeccompUnsupportedError) as exc:
            return False, str(exc)
        except Exception as exc:
            logger.warning("sandbox probe failed", exc_info=True)
            return False, f"sandbox probe failed: {exc}"
        if result != 42:
            return False, f"sandbox probe returned {result!r}"
        mode = "per-call uids" if self._pool else "the service's own uid"
        assert self._bound is not None
        if self._bound.kind == "per_process":
            logger.warning("sandbox: a call's total memory and processes are not bounded")
        return True, f"bubblewrap sandbox ready ({mode}; {self._bound.describe()})"

    def _probe_bound(self) -> Any:
        """Pick the total bound and run a probe call under it; in ``auto`` mode a cgroup
        tree that turns out unusable gives way to the rlimit budget."""
        self._bound = choose_bound(self.limits, self.limit_mode)
        try:
            return self._execute("def probe():\n    return 42\n", {}, None)
        except SandboxUnavailableError:
            if self._bound.tree is None or self.limit_mode != "auto":
                raise
            logger.warning("sandbox: per-call cgroups failed; using the rlimit budget")
            self._bound = choose_bound(self.limits, "rlimit")
            return self._execute("def probe():\n    return 42\n", {}, None)

    async def run(
        self, code: str, arguments: dict[str, Any], *, function_name: str | None = None
    ) -> Any:
        """Run ``code``'s function with ``arguments``; at most ``max_concurrent`` at once,
        further calls queue in the executor without blocking the event loop."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self.run_sync, code, arguments, function_name=function_name)
        return await loop.run_in_executor(self._executor, call)

    def run_sync(
        self, code: str, arguments: dict[str, Any], *, function_name: str | None = None
    ) -> Any:
        ok, reason = self.available()
        if not ok:
            raise SandboxUnavailableError(f"code execution is unavailable: {reason}")
        return self._execute(code, arguments, function_name)

    def _execute(self, code: str, arguments: dict[str, Any], function_name: str | None) -> Any:
        assert self._setup is not None and self._bound is not None
        try:
            payload = json.dumps(
                {
                    "code": code,
                    "arguments": arguments,
                    "function_name": function_name,
                    "limits": self._bound.runner_limits(self.limits),
                }
            ).encode()
        except (TypeError, ValueError) as exc:
            raise ToolInputError(f"arguments are not JSON-serializable: {exc}") from exc
        if not isinstance(arguments, dict):
            raise ToolInputError("arguments must be an object")
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ToolInputError("code and arguments are too large")
        if self._pool is None:
            return _Call(self._setup, self.limits, self._bound, payload, None).run()
        uid, lock_fd = self._pool.acquire()
        try:
            return _Call(self._setup, self.limits, self._bound, payload, uid).run()
        finally:
            self._pool.release(uid, lock_fd)


@dataclass(frozen=True)
class _Setup:
    """What the probe found; the same for every call."""

    bwrap: str
    python: str
    mounts: list[str]
    seccomp: bytes
    runner: bytes


class _Call:
    """One sandboxed process: spawn, feed stdin, read capped output, kill and reap."""

    def __init__(
        self,
        setup: _Setup,
        limits: SandboxLimits,
        bound: TotalBound,
        payload: bytes,
        uid: int | None,
    ) -> None:
        self.setup = setup
        self.limits = limits
        self.bound = bound
        self.payload = payload
        self.uid = uid
        self.stdout = bytearray()
        self.stderr_tail = b""
        self.info = b""
        self.init_pidfd: int | None = None
        self.started = False
        self.cgroup: CallCgroup | None = None
        self.events = CallEvents()

    def _argv(self, seccomp_fd: int, runner_fd: int, info_fd: int) -> list[str]:
        limits = self.limits
        return [
            self.setup.bwrap,
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--as-pid-1",  # the runner is init: when it exits the kernel kills and reaps the rest
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--hostname", "sandbox",
            "--proc", "/proc",
            "--dev", "/dev",
            "--remount-ro", "/dev",
            "--size", str(limits.tmp_size_mb * 1024 * 1024), "--tmpfs", SCRATCH,
            "--ro-bind-data", str(runner_fd), "/sandbox/runner.py",
            *self.setup.mounts,
            "--remount-ro", "/",
            "--chdir", SCRATCH,
            "--clearenv", "--setenv", "HOME", SCRATCH, "--setenv", "TMPDIR", SCRATCH,
            "--seccomp", str(seccomp_fd),
            "--info-fd", str(info_fd),
            "--", self.setup.python,
            "-I", "-S", "-B", "-X", "utf8", "/sandbox/runner.py",
        ]  # fmt: skip

    def run(self) -> Any:
        if self.bound.tree is not None:
            try:
                self.cgroup = self.bound.tree.create(
                    self.bound.memory_mb * 1024 * 1024, self.bound.max_procs
                )
            except CgroupError as exc:
                logger.error("sandbox: %s", exc)
                msg = "the sandbox could not create the call's cgroup"
                raise SandboxUnavailableError(msg) from exc
        try:
            return self._run()
        finally:
            if self.cgroup is not None and not self.cgroup.remove():
                logger.error("sandbox: could not remove the call cgroup %s", self.cgroup.dirs)

    def _run(self) -> Any:
        seccomp_fd = _memfd("seccomp", self.setup.seccomp)
        runner_fd = _memfd("runner", self.setup.runner)
        info_r, info_w = os.pipe()
        identity: dict[str, Any] = {}
        if self.uid is not None:
            identity = {"user": self.uid, "group": self.uid, "extra_groups": []}
        try:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv; the sandbox is the point
                self._argv(seccomp_fd, runner_fd, info_w),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(seccomp_fd, runner_fd, info_w),
                env={},  # bwrap's own environ is visible as /proc/1/environ inside
                cwd="/",
                start_new_session=True,
                **identity,
            )
        finally:
            for fd in (seccomp_fd, runner_fd, info_w):
                os.close(fd)
        deadline = time.monotonic() + self.limits.timeout_s
        try:
            outcome = self._communicate(proc, info_r, deadline)
            if outcome == "done":  # pipes closed; the process may still be running
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    outcome = "timeout"
        finally:
            self._kill(proc)
            os.close(info_r)
            if self.init_pidfd is not None:
                os.close(self.init_pidfd)
            if self.cgroup is not None:
                self.events = self.cgroup.events()
        return self._result(proc.returncode, outcome)

    def _communicate(self, proc: subprocess.Popen[bytes], info_r: int, deadline: float) -> str:
        """Pump the pipes until the process closes them; return why we stopped.

        The payload (and so the user's code) is written only once bwrap has reported the
        runner's pid and the runner is in the call's cgroup: until then it waits on stdin.
        """
        assert proc.stdin and proc.stdout and proc.stderr
        total = 0
        pending = memoryview(self.payload)
        os.set_blocking(proc.stdin.fileno(), False)
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            sel.register(proc.stderr, selectors.EVENT_READ)
            sel.register(info_r, selectors.EVENT_READ)
            while sel.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout"
                for key, _ in sel.select(remaining):
                    if key.fileobj is proc.stdin:
                        try:
                            pending = pending[os.write(proc.stdin.fileno(), pending) :]
                        except BrokenPipeError:
                            pending = pending[:0]
                        if not pending:
                            sel.unregister(proc.stdin)
                            proc.stdin.close()
                        continue
                    fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        if fd == info_r:
                            self._note_init_pid(proc.pid)
                            if not self._place():
                                return "unplaced"
                            if self.started:
                                sel.register(proc.stdin, selectors.EVENT_WRITE)
                        continue
                    if fd == info_r:
                        self.info += chunk
                        continue
                    total += len(chunk)
                    if total > self.limits.output_bytes:
                        return "output"
                    if key.fileobj is proc.stdout:
                        self.stdout += chunk
                    else:
                        self.stderr_tail = (self.stderr_tail + chunk)[-2000:]
        return "done"

    def _note_init_pid(self, bwrap_pid: int) -> None:
        """Pin the namespace's init (the runner, bwrap's child) with a pidfd: it names that
        process even after it dies, so a later kill cannot hit a recycled pid. Checking its
        parent after pidfd_open rules out a pid recycled before it."""
        with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
            pid = int(json.loads(self.info)["child-pid"])
            self.started = True
            pidfd = os.pidfd_open(pid)  # OSError (already gone): nothing to kill
            try:
                ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                ppid = -1
            if ppid == bwrap_pid:
                self.init_pidfd = pidfd
            else:
                os.close(pidfd)

    def _place(self) -> bool:
        """Move the runner into the call's cgroup before it gets any code; its children
        are born there. False (fail closed) when that cannot be done."""
        if self.cgroup is None or not self.started:
            return True
        if self.init_pidfd is None:
            return False
        pid = int(json.loads(self.info)["child-pid"])
        try:
            self.cgroup.attach(pid)
            # Still alive after the move, so the pid was not reused by another process.
            signal.pidfd_send_signal(self.init_pidfd, 0)
        except OSError as exc:
            logger.error("sandbox: cannot move the runner into its cgroup: %s", exc)
            return False
        return True

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        """Make sure nothing of this call survives.

        Killing the pid namespace's init makes the kernel kill every process in it, and
        bwrap (its parent) reaps it, so once bwrap has exited the namespace is empty.
        Killing bwrap first would leave the init to the host's pid 1 to reap.
        """
        if proc.poll() is None and self.init_pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.init_pidfd, signal.SIGKILL)
        try:
            proc.wait(timeout=_KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()

    def _result(self, returncode: int, outcome: str) -> Any:
        limits, bound = self.limits, self.bound
        if outcome == "unplaced":
            raise SandboxUnavailableError("the sandbox could not place the call in its cgroup")
        reply = self._reply() if outcome == "done" else None
        if self.events.oom_kills:  # the kernel killed a process for the call's total memory
            raise SandboxLimitError(
                f"the function exceeded the memory limit ({bound.memory_mb} MB in total)",
                details={"limit": "memory", "memory_mb": bound.memory_mb},
            )
        if self.events.pids_limit_hits and not (reply and reply["ok"]):
            raise SandboxLimitError(
                f"the function reached its limit of {bound.max_procs} processes",
                details={"limit": "processes", "max_procs": bound.max_procs},
            )
        if outcome == "timeout":
            raise SandboxTimeoutError(f"the function did not finish within {limits.timeout_s} s")
        if outcome == "output":
            raise SandboxLimitError(f"the function wrote more than {limits.output_bytes} bytes")
        if not self.started:
            logger.error("bubblewrap failed: %s", self.stderr_tail.decode(errors="replace"))
            raise SandboxUnavailableError("the sandbox failed to start")
        if reply is None:
            if returncode == _SIGKILL_EXIT:  # not by us: the CPU hard limit or the OOM killer
                raise SandboxLimitError("the function was killed for exceeding its CPU or memory")
            raise SandboxExecutionError(
                f"the function exited without a result (exit status {returncode})"
            )
        exc_type, message = str(reply.get("type")), str(reply.get("error"))
        if exc_type == "MemoryError" or reply.get("child_memory_error"):
            # Also when a forked process ran out of its address space: the result of a
            # function that lost part of its work to the limit is not trustworthy.
            raise SandboxLimitError(
                bound.memory_message(),
                details={"limit": "memory", "memory_mb": bound.memory_mb},
            )
        if reply["ok"]:
            return reply.get("result")
        if exc_type == "CPUTimeLimitExceeded":
            raise SandboxTimeoutError(f"the function used more than {limits.cpu_s} s of CPU time")
        text = f"{exc_type}: {message}" if message else exc_type
        raise SandboxExecutionError(text, details={"exception_type": exc_type})

    def _reply(self) -> dict[str, Any] | None:
        try:
            reply = json.loads(self.stdout)
        except ValueError:
            return None
        return reply if isinstance(reply, dict) and "ok" in reply else None


def _memfd(name: str, data: bytes) -> int:
    # A fresh fd per call: bwrap reads it to EOF, so a shared offset could not be reused.
    fd = os.memfd_create(f"llmsandbox-{name}", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
