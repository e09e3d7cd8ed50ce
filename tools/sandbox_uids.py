"""Unprivileged uids for sandboxed calls, one per running call, and killing what a
call left behind under its uid."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pwd
import signal
import stat
import time

from tools.errors import SandboxUnavailableError

logger = logging.getLogger("tools.sandbox")

KILL_GRACE_S = 3.0


class UidPool:
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


def kill_uid_processes(uid: int, grace_s: float = KILL_GRACE_S) -> bool:
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
