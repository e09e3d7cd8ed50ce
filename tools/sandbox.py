"""Run untrusted Python functions under bubblewrap, one fresh process per call.

Layers, outermost first (the README's "Code sandbox" section lists the guarantees):
a uid of its own per running call (when the service is root), every namespace unshared,
a read-only root with only a Python interpreter, its stdlib and the system shared
libraries, a small tmpfs as /tmp, an empty environment, a seccomp filter
(tools/seccomp.py), rlimits applied by the runner (tools/sandbox_runner.py) before any
user code, a wall-clock deadline and an output cap enforced while reading.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
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


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 5
    cpu_s: int = 5
    memory_mb: int = 256
    output_bytes: int = 64_000
    file_size_mb: int = 1
    tmp_size_mb: int = 16
    max_procs: int = 16
    open_files: int = 64


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
        limits: SandboxLimits = SandboxLimits(),  # frozen, safe to share
        max_concurrent: int = 4,
        uid_base: int = 61000,
        uid_pool_size: int = 64,
        lock_dir: str = "/run/llmsandbox",
        python: str | None = None,
    ) -> None:
        self.limits = limits
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

    @property
    def uids(self) -> range | None:
        return self._pool.uids if self._pool else None

    def available(self) -> tuple[bool, str]:
        with self._probe_lock:
            if self._status is None:
                self._status = self._probe()
            return self._status

    def _probe(self) -> tuple[bool, str]:
        if not sys.platform.startswith("linux"):
            return False, "the sandbox needs Linux"
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
            result = self._execute("def probe():\n    return 42\n", {}, None)
        except (SandboxUnavailableError, SeccompUnsupportedError) as exc:
            return False, str(exc)
        except Exception as exc:
            logger.warning("sandbox probe failed", exc_info=True)
            return False, f"sandbox probe failed: {exc}"
        if result != 42:
            return False, f"sandbox probe returned {result!r}"
        mode = "per-call uids" if self._pool else "the service's own uid"
        return True, f"bubblewrap sandbox ready ({mode})"

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
        try:
            payload = json.dumps(
                {
                    "code": code,
                    "arguments": arguments,
                    "function_name": function_name,
                    "limits": dataclasses.asdict(self.limits),
                }
            ).encode()
        except (TypeError, ValueError) as exc:
            raise ToolInputError(f"arguments are not JSON-serializable: {exc}") from exc
        if not isinstance(arguments, dict):
            raise ToolInputError("arguments must be an object")
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ToolInputError("code and arguments are too large")
        assert self._setup is not None
        if self._pool is None:
            return _Call(self._setup, self.limits, payload, None).run()
        uid, lock_fd = self._pool.acquire()
        try:
            return _Call(self._setup, self.limits, payload, uid).run()
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
        self, setup: _Setup, limits: SandboxLimits, payload: bytes, uid: int | None
    ) -> None:
        self.setup = setup
        self.limits = limits
        self.payload = payload
        self.uid = uid
        self.stdout = bytearray()
        self.stderr_tail = b""
        self.info = b""
        self.init_pidfd: int | None = None
        self.started = False

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
        return self._result(proc.returncode, outcome)

    def _communicate(self, proc: subprocess.Popen[bytes], info_r: int, deadline: float) -> str:
        """Pump the pipes until the process closes them; return why we stopped."""
        assert proc.stdin and proc.stdout and proc.stderr
        total = 0
        pending = memoryview(self.payload)
        os.set_blocking(proc.stdin.fileno(), False)
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdin, selectors.EVENT_WRITE)
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
        limits = self.limits
        if outcome == "timeout":
            raise SandboxTimeoutError(f"the function did not finish within {limits.timeout_s} s")
        if outcome == "output":
            raise SandboxLimitError(f"the function wrote more than {limits.output_bytes} bytes")
        if not self.started:
            logger.error("bubblewrap failed: %s", self.stderr_tail.decode(errors="replace"))
            raise SandboxUnavailableError("the sandbox failed to start")
        try:
            reply = json.loads(self.stdout)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or "ok" not in reply:
            if returncode == _SIGKILL_EXIT:  # not by us: the CPU hard limit or the OOM killer
                raise SandboxLimitError("the function was killed for exceeding its CPU or memory")
            raise SandboxExecutionError(
                f"the function exited without a result (exit status {returncode})"
            )
        if reply["ok"]:
            return reply.get("result")
        exc_type, message = str(reply.get("type")), str(reply.get("error"))
        if exc_type == "CPUTimeLimitExceeded":
            raise SandboxTimeoutError(f"the function used more than {limits.cpu_s} s of CPU time")
        if exc_type == "MemoryError":
            raise SandboxLimitError(
                f"the function exceeded the memory limit ({limits.memory_mb} MB)"
            )
        text = f"{exc_type}: {message}" if message else exc_type
        raise SandboxExecutionError(text, details={"exception_type": exc_type})


def _memfd(name: str, data: bytes) -> int:
    # A fresh fd per call: bwrap reads it to EOF, so a shared offset could not be reused.
    fd = os.memfd_create(f"llmsandbox-{name}", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
