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

This module decides whether and how calls can run; what a call sees of the host is in
tools/sandbox_mounts.py, the per-call uids in tools/sandbox_uids.py, and running one
call in tools/sandbox_call.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from tools.errors import SandboxUnavailableError, ToolInputError
from tools.sandbox_call import CallSetup, SandboxCall
from tools.sandbox_limits import LIMIT_MODES, SandboxLimits, TotalBound, choose_bound
from tools.sandbox_mounts import find_interpreter, mount_args
from tools.sandbox_uids import UidPool, uid_processes
from tools.seccomp import SeccompUnsupportedError, build_filter

__all__ = ["Sandbox", "SandboxLimits", "uid_processes"]

logger = logging.getLogger(__name__)

RUNNER_PATH = Path(__file__).with_name("sandbox_runner.py")
MAX_PAYLOAD_BYTES = 1_000_000


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
        self._pool = UidPool(uid_base, uid_pool_size, lock_dir) if os.geteuid() == 0 else None
        self._python = python
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_concurrent, thread_name_prefix="sandbox"
        )
        self._probe_lock = threading.Lock()
        self._status: tuple[bool, str] | None = None
        self._setup: CallSetup | None = None
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
            python = self._python or find_interpreter()
            if python is None:
                return False, "no Python interpreter readable by the sandbox user"
            self._setup = CallSetup(
                bwrap, python, mount_args(python), build_filter(), RUNNER_PATH.read_bytes()
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
            return SandboxCall(self._setup, self.limits, self._bound, payload, None).run()
        uid, lock_fd = self._pool.acquire()
        try:
            return SandboxCall(self._setup, self.limits, self._bound, payload, uid).run()
        finally:
            self._pool.release(uid, lock_fd)
