"""Where a gateway request spends its CPU: py-spy on one worker under steady wrk load.

    pip install py-spy            # into the interpreter's virtualenv (or have it on PATH)
    python bench/profile_gateway.py       # complete, concurrency 1, 10 s
    python bench/profile_gateway.py --scenario stream --duration 20

Starts the same stack as run.py but with one uvicorn worker on the asyncio loop: py-spy
cannot see the Python frames that uvloop's C loop runs, while the Python work done per
request is the same on both loops. Samples only while a thread holds the GIL, i.e. CPU
spent in Python. Writes bench/results/profile.md (cost by component and the heaviest
project lines) and profile.txt (collapsed stacks: flamegraph.pl or speedscope.app).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from load import background_wrk, run_wrk
from scenarios import SCENARIOS
from stack import BENCH, Stack, StackConfig

RESULTS = BENCH / "results"

# Each sample is charged to the leaf-most frame that matches one of these (file path
# patterns), so time in `copy.deepcopy` called by DRF counts as DRF, in typing helpers
# called by the openai SDK as the SDK.
COMPONENTS: list[tuple[str, str]] = [
    ("openai SDK: request building, response models", r"openai/"),
    ("HTTP client to the upstream (httpx2, httpcore2, h11)", r"(httpx2?|httpcore2?|h11|anyio)/"),
    ("Database: Django ORM and sqlite3", r"django/db/"),
    ("DRF serializers (request validation)", r"rest_framework/(serializers|fields)\.py"),
    ("DRF view machinery (request, auth, negotiation, render)", r"rest_framework/"),
    ("sync_to_async: thread hops, per-request threads", r"asgiref/|concurrent/|threading\.py"),
    ("Django handler, signals and middleware", r"django/"),
    ("uvicorn and Channels (ASGI server, routing)", r"uvicorn/|channels/|httptools/"),
    ("asyncio event loop", r"asyncio/|selectors\.py"),
    ("llmwrapper's own code", r"(llmwrapper|pipeline|providers|tenants|chats|memories|tools)/"),
    ("JSON encoding and decoding", r"json/"),
]
COMPONENT_PATTERNS = [(name, re.compile(r"^(?:.*/)?" + p)) for name, p in COMPONENTS]
PROJECT = re.compile(r"\((?:llmwrapper|pipeline|providers|tenants|chats|memories|tools)/[^)]*\)$")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


@dataclass
class Profile:
    samples: int
    by_component: list[tuple[str, int]]
    project_lines: list[tuple[str, int]]


def find_py_spy(python: str) -> str:
    beside = Path(python).parent / "py-spy"
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy not found: pip install py-spy (in the project's virtualenv)")
    return found


def analyse(raw: Path) -> Profile:
    components: collections.Counter[str] = collections.Counter()
    lines: collections.Counter[str] = collections.Counter()
    total = 0
    for row in raw.read_text().splitlines():
        stack, _, count_text = row.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        component = "other"
        for frame in reversed(frames):
            match = FRAME.match(frame)
            path = match["file"] if match else frame
            named = next((name for name, rx in COMPONENT_PATTERNS if rx.match(path)), None)
            if named:
                component = named
                break
        components[component] += count
        for frame in set(frames):
            if PROJECT.search(frame):
                lines[frame] += count
    return Profile(total, components.most_common(), lines.most_common())


def render(profile: Profile, *, cpu_ms: float, requests: int, info: str, top: int) -> str:
    def ms(count: int) -> str:
        return f"{cpu_ms * count / profile.samples:.2f}" if profile.samples else "—"

    def pct(count: int) -> str:
        return f"{100 * count / profile.samples:.1f}%" if profile.samples else "—"

    out = [
        "## Where a gateway request spends its CPU",
        "",
        info,
        "",
        f"{profile.samples} samples with the GIL held over {requests} requests; "
        f"CPU per request while profiled: {cpu_ms:.2f} ms (py-spy adds a little). "
        "ms/req = share of samples x that CPU time.",
        "",
        "### By component (each sample charged to its leaf-most matching frame)",
        "",
        "| component | share | ms/req |",
        "|---|---|---|",
    ]
    out += [f"| {name} | {pct(c)} | {ms(c)} |" for name, c in profile.by_component]
    out += [
        "",
        f"### Heaviest project lines (inclusive, top {top})",
        "",
        "| share | ms/req | frame |",
        "|---|---|---|",
    ]
    out += [
        f"| {pct(c)} | {ms(c)} | `{frame}` |"
        for frame, c in profile.project_lines[:top]
        if c < profile.samples  # skip frames on every stack (none expected)
    ]
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Profile one gateway worker under load.")
    parser.add_argument("--scenario", default="complete", choices=sorted(SCENARIOS))
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--database-url", default=None, help="another database (default: throwaway SQLite)"
    )
    args = parser.parse_args(argv)
    py_spy = find_py_spy(args.python)
    config = StackConfig(
        python=args.python,
        workers=1,
        loop="asyncio",
        log_dir=args.out,
        database_url=args.database_url,
    )
    raw = args.out / "profile.txt"
    workdir = args.out / "work"
    workdir.mkdir(parents=True, exist_ok=True)

    with Stack(config) as stack:
        gateway = stack.servers["gateway"]
        call = SCENARIOS[args.scenario].build(stack)["gateway"]
        run_wrk(gateway.base_url, call, connections=2, duration=2, threads=1, workdir=workdir)
        cpu_before = gateway.cpu_seconds()
        with background_wrk(
            gateway.base_url,
            call,
            connections=args.concurrency,
            duration=args.duration + 1,
            threads=1,
            workdir=workdir,
        ) as wrk:
            subprocess.run(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(gateway.pid),
                    "--subprocesses",
                    "--gil",
                    "--rate",
                    str(args.rate),
                    "--duration",
                    str(round(args.duration)),
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                ],
                check=True,
                capture_output=True,
                timeout=args.duration + 60,
            )
            assert wrk is not None
            out, _ = wrk.communicate(timeout=30)
        cpu = gateway.cpu_seconds() - cpu_before
    requests = 0
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            requests = json.loads(line.removeprefix("BENCH_RESULT "))["requests"]
    profile = analyse(raw)
    command = shlex.join(["python", "bench/profile_gateway.py", *(argv or sys.argv[1:])])
    info = (
        f"Scenario `{args.scenario}` at concurrency {args.concurrency}, 1 worker, asyncio "
        f"loop, {args.duration:g} s. Command: `{command}`"
    )
    text = render(
        profile,
        cpu_ms=cpu * 1000 / max(requests, 1),  # CPU and requests cover the same wrk run
        requests=requests,
        info=info,
        top=args.top,
    )
    print(text)
    (args.out / "profile.md").write_text(text)
    print(f"wrote {args.out / 'profile.md'} and {raw}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
