"""What bounds one sandboxed call: its limits, and how its total is enforced here.

A call's memory and process count are bounded in total, over every process it forks:
by a cgroup of its own where the service's cgroup tree is writable
(tools/sandbox_cgroup.py); otherwise by an rlimit budget, where each process gets an
equal share of the memory as address space under a small process cap, so that the sum
stays within the total. Where neither can be enforced, calls are refused unless the
operator chose per-process limits only.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from tools.errors import SandboxUnavailableError
from tools.sandbox_cgroup import CgroupError, CgroupTree
from tools.sandbox_cgroup import detect as detect_cgroups

logger = logging.getLogger(__name__)

# The interpreter and runner map about 25 MB before user code runs.
MIN_PROCESS_MEMORY_MB = 32
LIMIT_MODES = ("auto", "cgroup", "rlimit", "per_process")


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 5
    cpu_s: int = 5
    memory_mb: int = 256
    output_bytes: int = 64_000
    file_size_mb: int = 1
    tmp_size_mb: int = 16
    max_procs: int = 16  # processes and threads of one call (pids.max of its cgroup)
    open_files: int = 64
    fallback_max_procs: int = 4  # the process cap when the rlimit budget bounds a call


@dataclass(frozen=True)
class TotalBound:
    """How a call's total memory and process count are bounded.

    ``kind`` is ``cgroup`` (the kernel counts every process of the call), ``rlimit``
    (``process_memory_mb`` of address space for each of at most ``max_procs``
    processes, so their sum stays within the total), or ``per_process`` (no total).
    """

    kind: str
    memory_mb: int
    max_procs: int
    process_memory_mb: int
    tree: CgroupTree | None = None

    def describe(self) -> str:
        if self.tree is not None:
            return (
                f"{self.tree.describe()}: {self.memory_mb} MB and {self.max_procs} "
                "processes per call"
            )
        if self.kind == "rlimit":
            return (
                f"rlimit budget: {self.memory_mb} MB per call as {self.process_memory_mb} MB "
                f"for each of at most {self.max_procs} processes"
            )
        return f"per-process limits only: {self.memory_mb} MB each, no total per call"

    def runner_limits(self, limits: SandboxLimits) -> dict[str, Any]:
        """The rlimits the runner applies inside the sandbox."""
        nproc = self.max_procs
        if self.tree is not None:
            nproc += 1  # a backstop just above pids.max, which is the limit that binds
        return {
            **dataclasses.asdict(limits),
            "memory_mb": self.process_memory_mb,
            "max_procs": nproc,
        }

    def memory_message(self) -> str:
        if self.kind == "rlimit":
            return (
                f"the function exceeded the memory limit ({self.process_memory_mb} MB per "
                f"process: {self.memory_mb} MB shared by at most {self.max_procs} processes)"
            )
        return f"the function exceeded the memory limit ({self.memory_mb} MB)"


def choose_bound(limits: SandboxLimits, mode: str) -> TotalBound:
    """The strongest total bound ``mode`` allows here; SandboxUnavailableError if none."""
    cgroup_reason = ""
    if mode in ("auto", "cgroup"):
        try:
            tree = detect_cgroups()
        except CgroupError as exc:
            if mode == "cgroup":
                raise SandboxUnavailableError(f"no per-call cgroup: {exc}") from exc
            cgroup_reason = f"no per-call cgroup ({exc}); "
        else:
            mb, procs = limits.memory_mb, limits.max_procs
            return TotalBound("cgroup", mb, procs, mb, tree)
    if mode == "per_process":
        return TotalBound("per_process", limits.memory_mb, limits.max_procs, limits.memory_mb)
    procs = max(1, min(limits.max_procs, limits.fallback_max_procs))
    share = limits.memory_mb // procs
    if share < MIN_PROCESS_MEMORY_MB:
        raise SandboxUnavailableError(
            f"{cgroup_reason}the rlimit budget gives {share} MB per process "
            f"({limits.memory_mb} MB / {procs} processes), below the "
            f"{MIN_PROCESS_MEMORY_MB} MB an interpreter needs"
        )
    if cgroup_reason:
        logger.info("sandbox: %susing the rlimit budget", cgroup_reason)
    return TotalBound("rlimit", limits.memory_mb, procs, share)
