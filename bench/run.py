"""Benchmark llmwrapper against its upstream: the latency and CPU a gateway hop adds.

    python bench/run.py                       # defaults: 10 s per phase, concurrency 1 and 32
    python bench/run.py --duration 5 --concurrency 1,8,32 --workers 4
    python bench/run.py --scenarios all --compare-litellm --duration 6   # everything

Starts a fake OpenAI upstream, migrates a throwaway SQLite database, creates a subtenant
and an API key, starts the gateway under uvicorn (httptools + uvloop) and, with
--compare-litellm, LiteLLM's proxy from its own virtualenv (created on first use), then
for each scenario and concurrency loads the direct upstream and each system in turn with
wrk, and probes time to first token of streamed answers. Prints Markdown tables and
writes them to bench/results/latest.md (raw figures in latest.json). Every process it
starts is stopped on exit, Ctrl-C or error. See bench/README.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from load import Call, WrkResult, background_wrk, probe, require_wrk, run_wrk
from report import Measurement, Results, markdown
from scenarios import DEFAULT_SCENARIOS, SCENARIOS, Scenario
from stack import BENCH, REPO, MemoryPeak, Stack, StackConfig

RESULTS = BENCH / "results"
DEFAULT_CONCURRENCY = (1, 32)

# LiteLLM's proxy, for --compare-litellm: installed into a virtualenv of its own, never
# into the project's. Pinned: the newest release whose `proxy` extra resolves here.
# httptools as well, so that its uvicorn parses HTTP with the same C parser as the
# gateway's (without it uvicorn falls back to a much slower pure-Python parser).
LITELLM_VENV = BENCH / ".litellm-venv"
LITELLM_REQUIREMENTS = ("litellm[proxy]==1.108.7", "httptools==0.9.0")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the latency, throughput, CPU and memory llmwrapper adds "
        "in front of an LLM upstream (a fast local fake).",
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per load phase")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per call")
    parser.add_argument(
        "--concurrency",
        default=None,
        help="comma-separated numbers of concurrent connections, for every scenario "
        "(default: each scenario's own levels, else 1,32)",
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma-separated, or 'all', from: {', '.join(SCENARIOS)} "
        f"(default {','.join(DEFAULT_SCENARIOS)})",
    )
    parser.add_argument(
        "--compare-litellm",
        action="store_true",
        help="also run LiteLLM's proxy (2 workers, no database) in front of the same "
        "upstream; the compat scenarios load it",
    )
    parser.add_argument(
        "--litellm-venv",
        type=Path,
        default=LITELLM_VENV,
        help=f"LiteLLM's virtualenv, created if missing (default {LITELLM_VENV})",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter with the project's requirements, runs gateway and upstream "
        "(default: the one running this script)",
    )
    parser.add_argument(
        "--database-url", default=None, help="default: a throwaway SQLite file in /tmp"
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--probe-interval",
        type=float,
        default=0.005,
        help="minimum seconds between two probe requests (default 0.005)",
    )
    parser.add_argument(
        "--probe-connections",
        type=int,
        default=8,
        help="connections of the streaming probe at concurrency > 1 (default 8; wrk "
        "keeps the others busy)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    if args.concurrency is not None:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if names == ["all"]:
        names = list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: all, {', '.join(SCENARIOS)}")
    args.scenarios = [SCENARIOS[n] for n in names]
    if any(c < 1 for c in args.concurrency or [1]) or args.duration <= 0:
        parser.error("concurrency must be >= 1 and duration > 0")
    return args


def levels(args: argparse.Namespace, scenario: Scenario) -> list[int]:
    """Concurrency levels of a scenario: --concurrency, else its own, else 1 and 32."""
    return list(args.concurrency or scenario.concurrency or DEFAULT_CONCURRENCY)


def ensure_litellm(venv: Path) -> Path:
    """LiteLLM's proxy in its own virtualenv (`python -m venv` + pip); its bin/ dir."""
    marker = venv / ".bench-requirements"
    wanted = " ".join(LITELLM_REQUIREMENTS)
    bin_dir = venv / "bin"
    if marker.exists() and marker.read_text().strip() == wanted:
        return bin_dir
    if not (bin_dir / "python").exists():
        log(f"creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    log(f"installing {wanted} into {venv} (a few minutes the first time)")
    result = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", *LITELLM_REQUIREMENTS],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if not line.startswith("WARNING")]
        raise SystemExit(
            f"could not install LiteLLM's proxy into {venv}:\n" + "\n".join(errors[-15:])
        )
    marker.write_text(wanted + "\n")
    return bin_dir


def package_version(python: Path, name: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    return result.stdout.strip() or "unknown"


def git_commit() -> str:
    """The commit measured, marked when the project's files (bench/ aside) differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":(exclude)bench"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" + uncommitted changes outside bench/" if dirty else "")


def check_call(base_url: str, call: Call) -> None:
    """One request before loading, so a broken setup fails loudly instead of fast."""
    request = urllib.request.Request(  # noqa: S310 (loopback URL built by the stack)
        base_url + call.path,
        data=call.body_bytes(),
        headers={"Content-Type": "application/json", **call.headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    if status != 200 or (call.expect and call.expect not in body):
        raise SystemExit(
            f"{call.server} {call.path} answered {status}, expected 200 with "
            f"{call.expect!r}:\n{body[:2000].decode(errors='replace')}"
        )


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    distro = platform.system()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.partition("=")[2].strip('"')
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.0f} GB RAM, "
        f"{distro}, Linux {platform.release()}; load generator, gateway and upstream "
        "share these cores"
    )


def software_versions(python: str) -> str:
    code = (
        "import sys, importlib.metadata as m\n"
        "names = ['Django', 'djangorestframework', 'channels', 'uvicorn', 'httptools',"
        " 'uvloop', 'openai']\n"
        "print('Python ' + sys.version.split()[0] + ', ' + ', '.join("
        "n + ' ' + m.version(n) for n in names))"
    )
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    wrk_version = (wrk.stdout or wrk.stderr).split(" [")[0].strip()
    return f"{result.stdout.strip()}; {wrk_version}"


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_wrk()
    # Ctrl-C (even when started from a shell that ignores SIGINT for background jobs),
    # SIGTERM and SIGHUP all unwind through the Stack, which stops its processes.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    scenarios: list[Scenario] = args.scenarios
    litellm_bin = ensure_litellm(args.litellm_venv) if args.compare_litellm else None
    # Two servers each, three for the compat scenarios when LiteLLM runs.
    phases = sum(
        len(levels(args, s))
        * (int(s.wrk) + int(s.stream))
        * (3 if s.group == "compat" and litellm_bin else 2)
        for s in scenarios
    )
    estimate = phases * (args.duration + 1) + len(scenarios) * 2 * args.warmup + 15
    estimate += 60 if litellm_bin else 0  # LiteLLM's start
    log(f"{phases} load phases of {args.duration:g} s: about {estimate / 60:.1f} min")
    busy = os.getloadavg()[0]
    if busy > 0.5:
        log(f"warning: load average {busy:.2f} before starting; other work will skew figures")

    config = StackConfig(
        python=args.python,
        workers=args.workers,
        database_url=args.database_url,
        log_dir=args.out,
        litellm=litellm_bin,
    )
    command = "python bench/run.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    all_levels = sorted({c for s in scenarios for c in levels(args, s)})
    results = Results(
        info={
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(),
            "machine": machine_description(),
            "software": software_versions(args.python),
            "gateway": f"uvicorn, {args.workers} workers, httptools + uvloop, "
            + ("SQLite (throwaway file)" if not args.database_url else "DATABASE_URL given")
            + ", in-process cache (no Redis), DEBUG off, access log off",
            "load": f"{args.duration:g} s per phase after {args.warmup:g} s warm-up; "
            f"concurrency {', '.join(map(str, all_levels))}; "
            f"load average before: {load_average()}",
            "command": command.strip(),
            "probe_interval_ms": args.probe_interval * 1000,
            "scenarios": {
                s.name: {
                    "title": s.title,
                    "group": s.group,
                    "stream": s.stream,
                    "concurrency": levels(args, s),
                }
                for s in scenarios
            },
        }
    )
    if litellm_bin is not None:
        python = litellm_bin / "python"
        results.info["litellm"] = (
            f"LiteLLM {package_version(python, 'litellm')} proxy, own virtualenv, uvicorn "
            f"{package_version(python, 'uvicorn')}, 2 workers, httptools "
            f"{package_version(python, 'httptools')} + uvloop, no database, master key, "
            "retries and callbacks off, telemetry and remote fetches off, access log off"
        )
    workdir = args.out / "work"
    workdir.mkdir(parents=True, exist_ok=True)

    with Stack(config) as stack, MemoryPeak(stack.servers) as peak:
        log(", ".join(f"{name} {server.base_url}" for name, server in stack.servers.items()))
        calls = {s.name: s.build(stack) for s in scenarios}
        state: dict[str, dict[str, object]] = {}
        for s in scenarios:
            if s.state is not None:
                state[s.name] = {"before": s.state(stack, calls[s.name])}
        for by_server in calls.values():
            for call in by_server.values():
                check_call(stack.servers[call.server].base_url, call)
        for by_server in calls.values():
            for call in by_server.values():
                run_wrk(
                    stack.servers[call.server].base_url,
                    call,
                    connections=4,
                    duration=args.warmup,
                    threads=1,
                    workdir=workdir,
                )
        for name, server in stack.servers.items():
            results.memory[name] = {"warm": server.memory()}

        for scenario in scenarios:
            for concurrency in levels(args, scenario) if scenario.wrk else []:
                for call in calls[scenario.name].values():
                    server = stack.servers[call.server]
                    cpu_before = server.cpu_seconds()
                    wrk = run_wrk(
                        server.base_url,
                        call,
                        connections=concurrency,
                        duration=args.duration,
                        threads=args.wrk_threads,
                        workdir=workdir,
                    )
                    cpu = server.cpu_seconds() - cpu_before
                    if wrk.requests:
                        wrk = _with_cpu(wrk, cpu * 1000 / wrk.requests)
                    results.measurements.append(
                        Measurement(scenario.name, call.server, concurrency, wrk=wrk)
                    )
                    log(
                        f"{scenario.name:>16} c={concurrency:<3} {call.server:>8}: "
                        f"p50 {wrk.p50_ms:.2f} ms, p99 {wrk.p99_ms:.2f} ms, "
                        f"{wrk.rps:.0f} req/s, CPU {wrk.cpu_ms_per_request or 0:.2f} ms/req"
                        + (f", {wrk.error_count} errors" if wrk.error_count else "")
                    )
            if not scenario.stream:
                continue
            for concurrency in levels(args, scenario):
                for call in calls[scenario.name].values():
                    server = stack.servers[call.server]
                    own = min(concurrency, args.probe_connections)
                    result = probe(
                        server.base_url,
                        call,
                        duration=args.duration,
                        interval=args.probe_interval,
                        connections=own,
                        background=functools.partial(
                            background_wrk,
                            server.base_url,
                            call,
                            connections=concurrency - own,
                            duration=args.duration + 2,
                            threads=args.wrk_threads,
                            workdir=workdir,
                        ),
                    )
                    results.measurements.append(
                        Measurement(scenario.name, call.server, concurrency, probe=result)
                    )
                    log(
                        f"{scenario.name:>16} c={concurrency:<3} {call.server:>8}: "
                        f"first byte p50 {result.first_byte_ms['p50']:.2f} ms, first token "
                        f"p50 {result.first_token_ms['p50']:.2f} / p99 "
                        f"{result.first_token_ms['p99']:.2f} ms ({result.samples} samples"
                        + (f", {result.errors} errors)" if result.errors else ")")
                    )
        for s in scenarios:
            if s.state is not None:
                state[s.name]["after"] = s.state(stack, calls[s.name])
        if state:
            results.info["state"] = state
        for name, server in stack.servers.items():
            results.memory[name]["end"] = server.memory()
        peak.sample()
        results.peak_rss_kb = dict(peak.peaks)
        for server in stack.servers.values():
            problems = _log_problems(server.log_path)
            if problems:
                log(f"warning: {server.log_path} reports errors, e.g.: {problems}")

    results.info["load"] += f"; after: {load_average()}"
    text = markdown(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(text)
    (args.out / "latest.json").write_text(json.dumps(results.to_dict(), indent=2) + "\n")
    log(f"wrote {args.out / 'latest.md'} and latest.json")
    return 0


def _with_cpu(result: WrkResult, cpu_ms: float) -> WrkResult:
    return replace(result, cpu_ms_per_request=round(cpu_ms, 3))


def _log_problems(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    bad = [line for line in lines if "Traceback" in line or " ERROR " in line]
    return bad[0][:200] if bad else ""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; all started processes were stopped")
        sys.exit(130)
