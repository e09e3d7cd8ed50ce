"""A seccomp blocklist for the code sandbox, compiled to classic BPF in pure Python.

bubblewrap's ``--seccomp FD`` loads a raw ``struct sock_filter[]`` program. Building it
here avoids libseccomp (whose Python binding cannot be installed into a virtualenv).

The namespaces already isolate the sandbox; this filter shrinks the kernel surface that
a sandboxed process can reach (mounting, namespaces, keyrings, BPF, io_uring, ...) so a
kernel bug behind one of those calls is not reachable from user code.
"""

from __future__ import annotations

import errno
import platform
import struct

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARG0_LO = 16  # little-endian: low 32 bits of args[0] come first

_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K

_RET_KILL_PROCESS = 0x80000000
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000

_AF_UNIX = 1
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME(0x80)
_CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000
_CLONE_NS_FLAGS |= 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080

# Calls denied outright (EPERM). Checked against asm/unistd_64.h and asm-generic/unistd.h.
_DENY_NAMES = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "unshare", "setns",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "syslog", "acct", "quotactl", "quotactl_fd",
    "open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "fanotify_init",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "vhangup",
    "personality", "iopl", "ioperm", "uselib", "ustat", "sysfs",
    # SysV shared memory, message queues and POSIX mqueues live outside RLIMIT_AS
    # accounting once detached, so they could pin memory past the sandbox's limit.
    "shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open",
)  # fmt: skip

_X86_64 = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
    "pidfd_getfd": 438, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
    "move_mount": 429, "open_tree": 428, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "unshare": 272, "setns": 308, "keyctl": 250,
    "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "kexec_load": 246, "kexec_file_load": 320,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169,
    "swapon": 167, "swapoff": 168, "syslog": 103, "acct": 163, "quotactl": 179,
    "quotactl_fd": 443, "open_by_handle_at": 304, "name_to_handle_at": 303,
    "lookup_dcookie": 212, "fanotify_init": 300, "settimeofday": 164,
    "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159, "vhangup": 153,
    "personality": 135, "iopl": 172, "ioperm": 173, "uselib": 134, "ustat": 136,
    "sysfs": 139, "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67, "msgget": 68,
    "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "mq_open": 240,
    "clone": 56, "clone3": 435, "socket": 41,
}  # fmt: skip

_AARCH64 = {
    "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
    "pidfd_getfd": 438, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
    "move_mount": 429, "open_tree": 428, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "unshare": 97, "setns": 268, "keyctl": 219,
    "add_key": 217, "request_key": 218, "bpf": 280, "perf_event_open": 241,
    "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "kexec_load": 104, "kexec_file_load": 294,
    "init_module": 105, "finit_module": 273, "delete_module": 106, "reboot": 142,
    "swapon": 224, "swapoff": 225, "syslog": 116, "acct": 89, "quotactl": 60,
    "quotactl_fd": 443, "open_by_handle_at": 265, "name_to_handle_at": 264,
    "lookup_dcookie": 18, "fanotify_init": 262, "settimeofday": 170,
    "clock_settime": 112, "clock_adjtime": 266, "adjtimex": 171, "vhangup": 58,
    "personality": 92, "shmget": 194, "shmat": 196, "shmctl": 195, "shmdt": 197,
    "msgget": 186, "msgsnd": 189, "msgrcv": 188, "msgctl": 187, "mq_open": 180,
    "clone": 220, "clone3": 435, "socket": 198,
}  # fmt: skip

# (AUDIT_ARCH_* value, syscall table, first number of a foreign ABI multiplexed on it)
_ARCHES: dict[str, tuple[int, dict[str, int], int | None]] = {
    "x86_64": (0xC000003E, _X86_64, 0x40000000),  # x32 syscalls carry bit 30
    "aarch64": (0xC00000B7, _AARCH64, None),
}


class SeccompUnsupportedError(RuntimeError):
    pass


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def _errno(code: int) -> int:
    return _RET_ERRNO | code


def build_filter(machine: str | None = None) -> bytes:
    """Return the BPF program as bytes for bwrap's ``--seccomp``."""
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        raise SeccompUnsupportedError(f"no seccomp syscall table for {machine}")
    audit_arch, table, foreign_abi = _ARCHES[machine]

    prog = [
        _insn(_LD_W_ABS, _OFF_ARCH),
        # Any other ABI (e.g. i386 via int 0x80) has different numbers: kill it.
        _insn(_JEQ_K, audit_arch, jt=1, jf=0),
        _insn(_RET_K, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, _OFF_NR),
    ]
    if foreign_abi is not None:
        prog += [_insn(_JGE_K, foreign_abi, jt=0, jf=1), _insn(_RET_K, _RET_KILL_PROCESS)]
    for name in _DENY_NAMES:
        if name in table:
            prog += [_insn(_JEQ_K, table[name], jt=0, jf=1), _insn(_RET_K, _errno(errno.EPERM))]
    # clone3 passes its flags in a struct the filter cannot read; ENOSYS makes glibc
    # fall back to clone(), whose flags we can check.
    prog += [_insn(_JEQ_K, table["clone3"], jt=0, jf=1), _insn(_RET_K, _errno(errno.ENOSYS))]
    # clone(): refuse new namespaces, allow plain fork and threads.
    prog += [
        _insn(_JEQ_K, table["clone"], jt=0, jf=4),
        _insn(_LD_W_ABS, _OFF_ARG0_LO),
        _insn(_JSET_K, _CLONE_NS_FLAGS, jt=0, jf=1),
        _insn(_RET_K, _errno(errno.EPERM)),
        _insn(_RET_K, _RET_ALLOW),
    ]
    # socket(): only AF_UNIX (the sandbox has no network anyway; this also keeps
    # netlink, packet and vsock sockets out of reach).
    prog += [
        _insn(_JEQ_K, table["socket"], jt=0, jf=4),
        _insn(_LD_W_ABS, _OFF_ARG0_LO),
        _insn(_JEQ_K, _AF_UNIX, jt=0, jf=1),
        _insn(_RET_K, _RET_ALLOW),
        _insn(_RET_K, _errno(errno.EAFNOSUPPORT)),
    ]
    prog.append(_insn(_RET_K, _RET_ALLOW))
    return b"".join(prog)
