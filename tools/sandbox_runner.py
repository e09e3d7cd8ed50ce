"""Runs INSIDE the sandbox: apply limits, run one user function, report it as JSON.

Standalone on purpose: it is mounted read-only at /sandbox/runner.py and executed by a
bare interpreter (``python -I -S``) that cannot import anything from the project.

Protocol: stdin carries ``{"code", "arguments", "function_name", "limits"}``; the last
thing written to the original stdout is ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "...", "type": "..."}``, with ``"child_memory_error": true``
when a process forked by the function ran out of memory. User code's own prints are
moved to stderr so they cannot be confused with the result (the service caps both).
"""

import asyncio
import builtins
import contextlib
import inspect
import json
import mmap
import os
import resource
import signal
import sys

_MAX_MESSAGE = 2000


class CPUTimeLimitExceeded(BaseException):
    """Raised on SIGXCPU (soft RLIMIT_CPU); a BaseException so that a user's broad
    ``except Exception`` does not swallow it. The hard limit, one second later, kills."""


def _on_sigxcpu(signum, frame):
    raise CPUTimeLimitExceeded("CPU time limit exceeded")


def _apply_limits(limits):
    # Set before any user code runs; the sandbox has no CAP_SYS_RESOURCE, so user code
    # can lower these but never raise them again.
    mb = 1024 * 1024
    for name, value in (
        ("RLIMIT_AS", limits["memory_mb"] * mb),
        ("RLIMIT_FSIZE", limits["file_size_mb"] * mb),
        ("RLIMIT_NOFILE", limits["open_files"]),
        # Counted per user namespace: each call has its own budget.
        ("RLIMIT_NPROC", limits["max_procs"]),
        ("RLIMIT_CORE", 0),
        ("RLIMIT_MSGQUEUE", 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))
    # The runner is the pid namespace's init, for which the kernel ignores SIGXCPU unless
    # a handler is installed; with one, a CPU-bound function gets a clear error.
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"] + 1))


def _pick_function(namespace, function_name):
    if function_name:
        func = namespace.get(function_name)
        if not callable(func):
            raise LookupError(f"the code does not define a function named {function_name!r}")
        return func
    defined = [
        value
        for value in namespace.values()
        if inspect.isfunction(value) and value.__module__ == "__sandbox__"
    ]
    if len(defined) != 1:
        raise LookupError(
            f"the code defines {len(defined)} top-level functions; define exactly one "
            "or name the one to call"
        )
    return defined[0]


def _encode(payload):
    try:
        return json.dumps(payload, default=str)
    except (TypeError, ValueError):
        # Circular structures or non-string keys: fall back to the text form.
        payload["result"] = str(payload.get("result"))
        return json.dumps(payload, default=str)


def main():
    request = json.loads(sys.stdin.buffer.read())
    _apply_limits(request["limits"])
    main_pid = os.getpid()
    # Shared with every process the function forks: one that dies of MemoryError marks it.
    child_memory_error = mmap.mmap(-1, 1)
    result_fd = os.dup(1)
    os.dup2(2, 1)  # user prints go to stderr, counted against the output cap
    os.set_inheritable(result_fd, False)
    try:
        namespace = {"__name__": "__sandbox__", "__builtins__": builtins}
        exec(compile(request["code"], "<function>", "exec"), namespace)  # noqa: S102 - the sandbox is the boundary
        func = _pick_function(namespace, request.get("function_name"))
        result = func(**request["arguments"])
        if inspect.isawaitable(result):
            result = asyncio.run(result)
        payload = {"ok": True, "result": result}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are user errors too
        message = str(exc)[:_MAX_MESSAGE]
        payload = {"ok": False, "type": type(exc).__name__, "error": message}
    with contextlib.suppress(BaseException):  # a broken user stdout must not hide the result
        sys.stdout.flush()
    if os.getpid() != main_pid:
        # A child forked by the user code returned here: only the runner answers.
        if payload.get("type") == "MemoryError":
            child_memory_error[0] = 1
        os._exit(0)
    if child_memory_error[0]:
        payload["child_memory_error"] = True
    try:
        data = _encode(payload).encode()
    except MemoryError:
        payload = None
        data = json.dumps({"ok": False, "type": "MemoryError", "error": "result too large"})
        data = data.encode()
    while data:
        data = data[os.write(result_fd, data) :]


if __name__ == "__main__":
    main()
