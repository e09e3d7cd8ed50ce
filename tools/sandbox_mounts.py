"""What a sandboxed call sees of the host: a Python interpreter, its stdlib and the
shared libraries it maps, bound read-only (bwrap arguments)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

from tools.errors import SandboxUnavailableError

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


def reachable_by_others(path: str) -> bool:
    """Whether the uid bwrap runs as can read ``path``: bwrap resolves bind sources with
    its own permissions (pyenv's Python under /root, for instance, is out of reach)."""
    real = Path(path).resolve()
    if os.geteuid() != 0:
        return os.access(real, os.R_OK)  # bwrap runs as the service's own user
    parents_ok = all(parent.stat().st_mode & 0o001 for parent in real.parents)
    return real.exists() and parents_ok and bool(real.stat().st_mode & 0o004)


def elf_interpreter(path: str) -> str | None:
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


def find_interpreter() -> str | None:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = getattr(sys, "_base_executable", None) or sys.executable
    # The service's own base interpreter (never the virtualenv) first, then the system's.
    for candidate in (base, f"/usr/local/bin/{version}", f"/usr/bin/{version}", "/usr/bin/python3"):
        if os.path.isfile(candidate) and reachable_by_others(candidate):
            return os.path.realpath(candidate)
    return None


def mount_args(python: str) -> list[str]:
    """bwrap arguments exposing ``python``, its stdlib and shared libraries read-only."""
    out = subprocess.run(  # noqa: S603 - trusted interpreter, fixed probe script
        [python, "-I", "-S", "-c", _PROBE], capture_output=True, env={}, timeout=30, check=True
    )
    info = json.loads(out.stdout)
    args = ["--ro-bind", info["executable"], info["executable"]]
    for directory in info["path"]:
        if not reachable_by_others(directory):
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
    loader = elf_interpreter(info["executable"])
    if loader:
        args += ["--ro-bind", loader, loader]
    args += ["--ro-bind-try", "/usr/share/zoneinfo", "/usr/share/zoneinfo"]
    return args
