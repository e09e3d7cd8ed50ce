"""One sandboxed call: the bwrap command line, the process, its deadline and output cap,
its cgroup or rlimit budget, and reading its result."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.errors import (
    SandboxExecutionError,
    SandboxLimitError,
    SandboxTimeoutError,
    SandboxUnavailableError,
)
from tools.sandbox_cgroup import CallCgroup, CallEvents, CgroupError
from tools.sandbox_limits import SandboxLimits, TotalBound
from tools.sandbox_uids import KILL_GRACE_S

logger = logging.getLogger("tools.sandbox")

SCRATCH = "/tmp"  # noqa: S108 - the sandbox's own size-limited tmpfs, not the host's
SANDBOX_UID = 65534  # "nobody" as seen from inside the sandbox
_SIGKILL_EXIT = 128 + signal.SIGKILL


@dataclass(frozen=True)
class CallSetup:
    """What the probe found; the same for every call."""

    bwrap: str
    python: str
    mounts: list[str]
    seccomp: bytes
    runner: bytes


class SandboxCall:
    """One sandboxed process: spawn, feed stdin, read capped output, kill and reap."""

    def __init__(
        self,
        setup: CallSetup,
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
        seccomp_fd = memfd("seccomp", self.setup.seccomp)
        runner_fd = memfd("runner", self.setup.runner)
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
            proc.wait(timeout=KILL_GRACE_S)
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


def memfd(name: str, data: bytes) -> int:
    # A fresh fd per call: bwrap reads it to EOF, so a shared offset could not be reused.
    fd = os.memfd_create(f"llmsandbox-{name}", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
