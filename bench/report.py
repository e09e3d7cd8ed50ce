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
    peak_rss_kb: dict[str, int] = field(default_factory=dict)  # server -> largest sampled sum

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
            "peak_rss_kb": self.peak_rss_kb,
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
        f"- Commit: {info.get('commit', 'unknown')}",
        f"- Machine: {info['machine']}",
        f"- Software: {info['software']}",
        f"- Gateway: {info['gateway']}",
        *([f"- LiteLLM: {info['litellm']}"] if "litellm" in info else []),
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
            peak = results.peak_rss_kb.get(server)
            rows.append(
                [
                    server,
                    str((end or idle).processes) if (end or idle) else "—",
                    _mb(idle.rss_kb) if idle else "—",
                    _mb(end.rss_kb) if end else "—",
                    _mb(peak) if peak else "—",
                    _mb(end.hwm_kb) if end else "—",
                ]
            )
        out += _table(
            [
                "system",
                "processes",
                "RSS after warm-up",
                "RSS at end",
                "peak RSS (sampled)",
                "Σ VmHWM",
            ],
            rows,
        )
    out += _chat_section(results)
    out += _side_by_side(results)
    out.append("")
    return "\n".join(out)


def _in_group(results: Results, group: str) -> list[str]:
    scenarios = results.info.get("scenarios", {})
    return [name for name, about in scenarios.items() if about.get("group") == group]


def _wrk(results: Results, scenario: str, server: str, concurrency: int) -> WrkResult | None:
    found = results.find(scenario, server, concurrency, "wrk")
    return found.wrk if found else None


def _probe(results: Results, scenario: str, server: str, concurrency: int) -> ProbeResult | None:
    found = results.find(scenario, server, concurrency, "probe")
    return found.probe if found else None


def _chat_section(results: Results) -> list[str]:
    """One row per chat scenario and concurrency: the gateway against its window's call."""
    names = _in_group(results, "chat")
    if not names:
        return []
    state = results.info.get("state", {})
    out = [
        "",
        "### Chat sends",
        "",
        "*messages*: prior messages per chat of the pool when the load starts → at its end "
        "(each send appends two); *window*: messages the gateway sends the model (history "
        "window + the new one), which the direct call carries too. Sync sends by wrk (whole "
        "answer); streams by the probe (first `delta` event, and the whole stream).",
        "",
    ]
    rows = []
    for name in names:
        about = results.info["scenarios"][name]
        st = state.get(name, {})
        before, after = st.get("before", {}), st.get("after", {})
        chats = f"{before.get('chats', '?')} x {before.get('max', '?')} → {after.get('max', '?')}"
        for c in about["concurrency"]:
            w, bw = _wrk(results, name, "gateway", c), _wrk(results, name, BASELINE, c)
            p, bp = _probe(results, name, "gateway", c), _probe(results, name, BASELINE, c)
            if w is not None:
                rows.append(
                    [
                        name,
                        chats,
                        str(before.get("window", "?")),
                        str(c),
                        _ms(w.p50_ms),
                        _ms(w.p99_ms),
                        f"{w.rps:.0f}",
                        _ms(w.cpu_ms_per_request),
                        _added(w.p50_ms, bw.p50_ms) if bw else "—",
                        _added(w.p99_ms, bw.p99_ms) if bw else "—",
                    ]
                )
            if p is not None:
                rows.append(
                    [
                        name,
                        chats,
                        str(before.get("window", "?")),
                        str(c),
                        f"first delta {_ms(p.first_token_ms['p50'])}",
                        f"first delta {_ms(p.first_token_ms['p99'])}",
                        "—",
                        "—",
                        _added(p.first_token_ms["p50"], bp.first_token_ms["p50"]) if bp else "—",
                        _added(p.first_token_ms["p99"], bp.first_token_ms["p99"]) if bp else "—",
                    ]
                )
    out += _table(
        [
            "scenario",
            "chats x messages",
            "window",
            "conc.",
            "p50",
            "p99",
            "req/s",
            "CPU ms/req",
            "added p50",
            "added p99",
        ],
        rows,
    )
    return out


def _side_by_side(results: Results) -> list[str]:
    """The OpenAI-compatible endpoint of each system, one column per system."""
    names = _in_group(results, "compat")
    in_compat = {m.server for m in results.measurements if m.scenario in names}
    systems = [s for s in dict.fromkeys(m.server for m in results.measurements) if s in in_compat]
    if not names or "litellm" not in systems:
        return []
    systems.remove(BASELINE)
    columns = [BASELINE, *systems]
    out = [
        "",
        "### Side by side: the OpenAI-compatible endpoint",
        "",
        "`POST /v1/chat/completions`, one user message, on each system in front of the same "
        "fake upstream, under the same load. Cells: *added* ms (the system minus the direct "
        "call at the same percentile and concurrency), then the system's own figure in "
        "brackets. Saturation: the highest req/s over the concurrency levels, with the CPU "
        "per request of that phase.",
        "",
    ]
    rows: list[list[str]] = []
    for scenario in names:
        kind = "streaming" if results.info["scenarios"][scenario].get("stream") else "plain"
        levels = results.info["scenarios"][scenario]["concurrency"]
        for c in levels:
            base = _wrk(results, scenario, BASELINE, c)
            for pct in ("p50", "p99"):
                cells = []
                for server in columns:
                    w = _wrk(results, scenario, server, c)
                    cells.append(_with_added(w, base, pct, server))
                rows.append([f"{scenario}, c={c}: {pct}", *cells])
        cells = []
        for server in columns:
            found = [w for c in levels if (w := _wrk(results, scenario, server, c)) is not None]
            best = max(found, key=lambda w: w.rps) if found else None
            cells.append(
                f"{best.rps:.0f} req/s, {_ms(best.cpu_ms_per_request)} ms CPU" if best else "—"
            )
        rows.append([f"{scenario}: saturation ({kind})", *cells])
        for c in levels:
            base_probe = _probe(results, scenario, BASELINE, c)
            if base_probe is None:
                continue
            cells = []
            for server in columns:
                probe = _probe(results, scenario, server, c)
                if probe is None:
                    cells.append("—")
                    continue
                value = probe.first_token_ms["p50"]
                if server == BASELINE:
                    cells.append(_ms(value))
                else:
                    added = _added(value, base_probe.first_token_ms["p50"])
                    cells.append(f"{added} ({_ms(value)})")
            rows.append([f"{scenario}, c={c}: first chunk p50", *cells])
    peaks = [results.peak_rss_kb.get(server) for server in columns]
    rows.append(["peak memory (RSS, all processes)", *(_mb(p) if p else "—" for p in peaks)])
    out += _table(["", *columns], rows)
    return out


def _with_added(w: WrkResult | None, base: WrkResult | None, pct: str, server: str) -> str:
    if w is None:
        return "—"
    value = getattr(w, f"{pct}_ms")
    if server == BASELINE or base is None:
        return _ms(value)
    return f"{_added(value, getattr(base, f'{pct}_ms'))} ({_ms(value)})"
