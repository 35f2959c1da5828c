"""Hand-made inline SVG charts for the HTML report: no library, no script, nothing fetched.

Each function returns one `<svg>` element as text. Every mark carries a `<title>`, which browsers
show as a tooltip, so exact values are a hover away without any JavaScript. All text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

# Colour-blind-friendly categorical palette (Okabe-Ito, then greys for "other").
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#999999",
)

WIDTH = 960
HEIGHT = 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 36, 56


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= value (axis maximum)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10.0**exponent
        if candidate >= value * (1 - 1e-12):
            return candidate
    return 10.0 ** (exponent + 1)  # pragma: no cover - the loop always returns


def compact(value: float) -> str:
    """1234 -> 1.2k, 2500000 -> 2.5M: axis labels."""
    magnitude = abs(value)
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= threshold:
            return f"{value / threshold:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.2f}".rstrip("0").rstrip(".") if magnitude < 10 else f"{value:.0f}"


def nice_duration_ceiling(seconds: float) -> float:
    """An axis maximum for durations whose quarter ticks are whole minutes (15m, 30m, 45m, 1h)."""
    if seconds <= 60:
        return nice_ceiling(seconds)
    minutes = seconds / 60
    for top in (4, 8, 12, 20, 40, 60, 80, 120, 180, 240, 360, 480, 720, 960, 1440):
        if top >= minutes:
            return top * 60.0
    return nice_ceiling(seconds / 3600) * 3600


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def duration(seconds: float) -> str:
    """90 -> 1.5m, 3600 -> 1h, 42 -> 42s."""

    def short(value: float) -> str:
        return f"{value:.1f}".rstrip("0").rstrip(".")

    if seconds >= 3600:
        return short(seconds / 3600) + "h"
    if seconds >= 60:
        return short(seconds / 60) + "m"
    return f"{seconds:.0f}s"


def _open(title: str, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img"'
        f' aria-label="{escape(title)}">',
        f'<text x="{_LEFT}" y="20" class="chart-title">{escape(title)}</text>',
    ]


def _y_axis(parts: list[str], top: float, fmt: Callable[[float], str], y_label: str) -> None:
    plot_h = HEIGHT - _TOP - _BOTTOM
    for i in range(5):
        value = top * i / 4
        y = HEIGHT - _BOTTOM - plot_h * i / 4
        parts.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{escape(fmt(value))}</text>'
        )
    parts.append(
        f'<text x="14" y="{_TOP + plot_h / 2:.0f}" class="axis-label" text-anchor="middle"'
        f' transform="rotate(-90 14 {_TOP + plot_h / 2:.0f})">{escape(y_label)}</text>'
    )


def _x_labels(parts: list[str], xs: Sequence[date], x_of: Callable[[int], float]) -> None:
    if not xs:
        return
    step = max(1, math.ceil(len(xs) / 10))
    for i in range(0, len(xs), step):
        parts.append(
            f'<text x="{x_of(i):.1f}" y="{HEIGHT - _BOTTOM + 16}" class="tick"'
            f' text-anchor="middle">{xs[i]:%b %d}</text>'
        )


def _legend(parts: list[str], names: Sequence[str], y: float) -> None:
    x = float(_LEFT)
    for i, name in enumerate(names):
        label = name if len(name) <= 32 else name[:31] + "…"
        parts.append(
            f'<rect x="{x:.0f}" y="{y - 9:.0f}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 14:.0f}" y="{y:.0f}" class="legend">{escape(label)}</text>'
        )
        x += 24 + 7 * len(label)
        if x > WIDTH - 160:
            x = float(_LEFT)
            y += 14


def stacked_bars(
    days: Sequence[date],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    y_label: str,
) -> str:
    """One bar per day, stacked by series (e.g. credits by project)."""
    parts = _open(title)
    totals = [sum(values[i] for _, values in series) for i in range(len(days))]
    top = nice_ceiling(max(totals, default=0.0))
    _y_axis(parts, top, compact, y_label)
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.8, 0.5)
    for i, day in enumerate(days):
        y = float(HEIGHT - _BOTTOM)
        for s, (name, values) in enumerate(series):
            value = values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect x="{_LEFT + i * slot + (slot - bar) / 2:.2f}" y="{y:.2f}" width="{bar:.2f}"'
                f' height="{h:.2f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{day}: {escape(name)} {value:,.0f}</title></rect>"
            )
    _x_labels(parts, days, lambda i: _LEFT + (i + 0.5) * slot)
    _legend(parts, [name for name, _ in series], HEIGHT - 14)
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    xs: Sequence[date],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    y_label: str,
    fmt: Callable[[float], str] = compact,
    top: float | None = None,
) -> str:
    """One line per series over the x values; a missing value breaks the line."""
    parts = _open(title)
    values = [v for _, ys in series for v in ys if v is not None]
    axis_top = top if top is not None else nice_ceiling(max(values, default=0.0))
    _y_axis(parts, axis_top, fmt, y_label)
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM

    def x_of(i: int) -> float:
        return _LEFT + (plot_w * i / (len(xs) - 1) if len(xs) > 1 else plot_w / 2)

    for s, (name, ys) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        segment: list[str] = []
        for i, value in enumerate(ys):
            if value is None:
                if len(segment) > 1:
                    parts.append(_polyline(segment, colour))
                segment = []
                continue
            x, y = x_of(i), HEIGHT - _BOTTOM - plot_h * min(value, axis_top) / axis_top
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(name)}, week of {xs[i]}: {escape(fmt(value))}</title></circle>"
            )
        if len(segment) > 1:
            parts.append(_polyline(segment, colour))
    _x_labels(parts, xs, x_of)
    _legend(parts, [name for name, _ in series], HEIGHT - 14)
    parts.append("</svg>")
    return "".join(parts)


def _polyline(points: Sequence[str], colour: str) -> str:
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"/>'


@dataclass(frozen=True)
class ForecastBar:
    label: str
    mtd: float
    projected: float
    budget: float | None


def forecast_bars(bars: Sequence[ForecastBar], *, title: str) -> str:
    """Horizontal bars: month-to-date (solid), projected month-end (light), budget (a red tick)."""
    row_h = 26
    height = _TOP + row_h * max(len(bars), 1) + 40
    parts = _open(title, height)
    left = 220
    plot_w = WIDTH - left - 90
    top = nice_ceiling(
        max([b.projected for b in bars] + [b.budget or 0 for b in bars], default=0.0)
    )
    for i, b in enumerate(bars):
        y = _TOP + i * row_h
        label = b.label if len(b.label) <= 30 else b.label[:29] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" class="tick" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{plot_w * b.projected / top:.1f}" height="16"'
            f' fill="{PALETTE[4]}" opacity="0.55"><title>{escape(b.label)}: projected'
            f" {b.projected:,.0f} credits</title></rect>"
            f'<rect x="{left}" y="{y + 4}" width="{plot_w * b.mtd / top:.1f}" height="16"'
            f' fill="{PALETTE[0]}"><title>{escape(b.label)}: month to date {b.mtd:,.0f} credits</title></rect>'
            f'<text x="{left + plot_w * max(b.projected, b.budget or 0) / top + 6:.1f}" y="{y + 16}"'
            f' class="tick">{compact(b.projected)}</text>'
        )
        if b.budget is not None:
            x = left + plot_w * b.budget / top
            colour = "#D55E00" if b.projected > b.budget else "#009E73"
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 24}" stroke="{colour}"'
                f' stroke-width="3"><title>{escape(b.label)}: budget {b.budget:,.0f} credits</title></line>'
            )
    legend_y = height - 12
    parts.append(
        f'<rect x="{left}" y="{legend_y - 9}" width="10" height="10" fill="{PALETTE[0]}"/>'
        f'<text x="{left + 14}" y="{legend_y}" class="legend">month to date</text>'
        f'<rect x="{left + 120}" y="{legend_y - 9}" width="10" height="10" fill="{PALETTE[4]}" opacity="0.55"/>'
        f'<text x="{left + 134}" y="{legend_y}" class="legend">projected month end</text>'
        f'<rect x="{left + 290}" y="{legend_y - 9}" width="3" height="10" fill="#D55E00"/>'
        f'<text x="{left + 298}" y="{legend_y}" class="legend">budget (red: projected over it)</text>'
        "</svg>"
    )
    return "".join(parts)
