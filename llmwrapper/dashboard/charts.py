"""Charts as SVG, drawn on the server: no script, no CDN, readable in any browser.

Each chart is an `<svg data-chart="name" role="img">` with its axes, a legend, and a
`<title>` on every bar and point (the browser shows it on hover).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2563eb", "#dc2626", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2")
WIDTH, HEIGHT = 760, 230
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 14, 48


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    color: str = ""


def _nice_step(top: float, ticks: int = 4) -> float:
    raw = top / ticks if top > 0 else 1
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def number(value: float) -> str:
    """12, 2,500, 15k, 2.3M: short axis and tooltip numbers."""
    if 1000 <= abs(value) < 10_000:
        return f"{value:,.0f}"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(value) >= limit:
            return f"{value / (limit if suffix != 'k' else 1e3):.3g}{suffix}"
    if value and abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.3g}" if value != int(value) else str(int(value))


def _colored(series: Sequence[Series]) -> list[Series]:
    return [
        Series(s.name, s.values, s.color or PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)
    ]


def _frame(
    name: str, label: str, top: float, labels: Sequence[str], unit: str, prefix: str = ""
) -> list[str]:
    """The svg element, the horizontal grid with its values, and the x labels."""
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lw-chart" data-chart="{escape(name)}" '
        f'role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(label)}</title>",
    ]
    step = _nice_step(top)
    tick = 0.0
    while tick <= top + step / 2:
        y = TOP + plot_h - (tick / top * plot_h if top else 0)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(prefix)}{escape(number(tick))}{escape(unit)}</text>"
        )
        tick += step
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    every = max(1, math.ceil(len(labels) / 12))
    for i, text in enumerate(labels):
        if i % every == 0:
            x = LEFT + slot * (i + 0.5)
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{escape(text)}</text>'
            )
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], LEFT
    for s in series:
        parts.append(
            f'<rect class="legend" x="{x}" y="{HEIGHT - 18}" width="10" height="10" '
            f'fill="{s.color}"/><text class="axis" x="{x + 14}" y="{HEIGHT - 9}">'
            f"{escape(s.name)}</text>"
        )
        x += 24 + 7 * len(s.name)
    return parts


def _top(values: Sequence[float]) -> float:
    top = max(values, default=0)
    return _nice_step(top) * 4 if top > 0 else 1


def stacked_bars(
    name: str,
    label: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
    prefix: str = "",
) -> SafeString:
    """One bar per label, the series stacked in it."""
    series = _colored(series)
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = _top(totals)
    parts = _frame(name, label, top, labels, unit, prefix)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    width = max(1.0, slot * 0.7)
    for i, text in enumerate(labels):
        base = TOP + plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            height = value / top * plot_h
            base -= height
            parts.append(
                f'<rect class="bar" x="{LEFT + slot * i + (slot - width) / 2:.1f}" '
                f'y="{base:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{s.color}">'
                f"<title>{escape(text)}: {escape(s.name)} {escape(prefix)}{escape(number(value))}"
                f"{escape(unit)}</title></rect>"
            )
    parts += _legend(series)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 -- every text above is escaped


def lines(
    name: str, label: str, labels: Sequence[str], series: Sequence[Series], unit: str = ""
) -> SafeString:
    """One line per series, a point per label (days without a value are gaps)."""
    series = _colored(series)
    top = _top([v for s in series for v in s.values if v is not None])
    parts = _frame(name, label, top, labels, unit)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    for s in series:
        points = [
            (LEFT + slot * (i + 0.5), TOP + plot_h - v / top * plot_h, labels[i], v)
            for i, v in enumerate(s.values)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            parts.append(
                f'<polyline class="line" points="{path}" fill="none" stroke="{s.color}" '
                'stroke-width="2"/>'
            )
        for x, y, text, v in points:
            parts.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.color}">'
                f"<title>{escape(text)}: {escape(s.name)} {escape(number(v))}{escape(unit)}"
                "</title></circle>"
            )
    parts += _legend(series)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 -- every text above is escaped
