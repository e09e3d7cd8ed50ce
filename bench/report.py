"""The results of a run, as data (JSON) and as Markdown tables."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from load import ProbeResult, WrkResult
from stack import Memory

BASELINE = "direct"


@dataclass
class Measurement:
    scenario: str
    server: str
    concurrency: int
    wrk: WrkResult | None = None
    probe: ProbeResult | None = None


@dataclass
class Results:
    info: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    memory: dict[str, dict[str, Memory]] = field(default_factory=dict)  # server -> when -> mem

    def find(self, scenario: str, server: str, concurrency: int, kind: str) -> Measurement | None:
        """The measurement of `kind` ("wrk" or "probe") for this scenario, server, c."""
        for m in self.measurements:
            same = (m.scenario, m.server, m.concurrency) == (scenario, server, concurrency)
            if same and getattr(m, kind) is not None:
                return m
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "info": self.info,
            "measurements": [asdict(m) for m in self.measurements],
            "memory": {
                server: {when: asdict(mem) for when, mem in mems.items()}
                for server, mems in self.memory.items()
            },
        }


def _ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _added(value: float, base: float | None) -> str:
    if base is None or math.isnan(value) or math.isnan(base):
        return "—"
    return ("+" if value - base >= 0 else "") + _ms(value - base)


def _mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _ordered(results: Results, kind: str) -> list[Measurement]:
    """Measurements of one kind, baseline first within each scenario and concurrency."""
    chosen = [m for m in results.measurements if getattr(m, kind) is not None]
    scenarios = list(dict.fromkeys(m.scenario for m in chosen))
    return sorted(
        chosen,
        key=lambda m: (scenarios.index(m.scenario), m.concurrency, m.server != BASELINE),
    )


def markdown(results: Results) -> str:
    info = results.info
    out = [f"## llmwrapper benchmark, {info['date']}", ""]
    out += [
        f"- Machine: {info['machine']}",
        f"- Software: {info['software']}",
        f"- Gateway: {info['gateway']}",
        f"- Load: {info['load']}",
        f"- Command: `{info['command']}`",
        "",
        "Latencies in milliseconds. *added* = gateway minus direct upstream at the same "
        "percentile. CPU ms/req = CPU time of the answering server's processes "
        "(for the gateway: uvicorn master + workers, not the upstream) per request.",
        "",
        "### Latency and throughput (wrk, whole response)",
        "",
    ]
    rows = []
    for m in _ordered(results, "wrk"):
        w = m.wrk
        assert w is not None
        base = results.find(m.scenario, BASELINE, m.concurrency, "wrk")
        bw = base.wrk if base and m.server != BASELINE else None
        rows.append(
            [
                m.scenario,
                str(m.concurrency),
                m.server,
                _ms(w.p50_ms),
                _ms(w.p99_ms),
                f"{w.rps:.0f}",
                _ms(w.cpu_ms_per_request),
                _added(w.p50_ms, bw.p50_ms) if bw else "—",
                _added(w.p99_ms, bw.p99_ms) if bw else "—",
                str(w.error_count) if w.error_count else "0",
            ]
        )
    out += _table(
        [
            "scenario",
            "conc.",
            "system",
            "p50",
            "p99",
            "req/s",
            "CPU ms/req",
            "added p50",
            "added p99",
            "errors",
        ],
        rows,
    )

    probes = _ordered(results, "probe")
    if probes:
        out += [
            "",
            "### Streaming: time to first byte and first token (probe)",
            "",
            f"The probe's own k connections (together at most one request per "
            f"{info.get('probe_interval_ms', 5):g} ms) are opened first; at concurrency c, "
            "wrk then keeps the other c - k connections busy. "
            "First token: the gateway's first `delta` event; the upstream's first chunk "
            "with content.",
            "",
        ]
        rows = []
        for m in probes:
            p = m.probe
            assert p is not None
            base = results.find(m.scenario, BASELINE, m.concurrency, "probe")
            bp = base.probe if base and m.server != BASELINE else None
            rows.append(
                [
                    m.scenario,
                    str(m.concurrency),
                    m.server,
                    _ms(p.first_byte_ms["p50"]),
                    _ms(p.first_token_ms["p50"]),
                    _ms(p.first_token_ms["p99"]),
                    _added(p.first_token_ms["p50"], bp.first_token_ms["p50"]) if bp else "—",
                    _added(p.first_token_ms["p99"], bp.first_token_ms["p99"]) if bp else "—",
                    _ms(p.total_ms["p50"]),
                    str(p.connections),
                    str(p.samples),
                    str(p.errors),
                ]
            )
        out += _table(
            [
                "scenario",
                "conc.",
                "system",
                "first byte p50",
                "first token p50",
                "first token p99",
                "added p50",
                "added p99",
                "whole stream p50",
                "probe conns (k)",
                "samples",
                "errors",
            ],
            rows,
        )

    if results.memory:
        out += ["", "### Memory (resident, summed over the server's processes)", ""]
        rows = []
        for server, mems in results.memory.items():
            idle, end = mems.get("warm"), mems.get("end")
            rows.append(
                [
                    server,
                    str((end or idle).processes) if (end or idle) else "—",
                    _mb(idle.rss_kb) if idle else "—",
                    _mb(end.rss_kb) if end else "—",
                    _mb(end.hwm_kb) if end else "—",
                ]
            )
        out += _table(
            ["system", "processes", "RSS after warm-up", "RSS at end", "peak (Σ VmHWM)"], rows
        )
    out.append("")
    return "\n".join(out)
