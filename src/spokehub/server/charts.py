"""Small server-side SVG charts for the LLM pages: spend per day, and a reliability diagram.

Plain SVG strings (no JavaScript), with a ``<title>`` per bar or point so hovering tells the
figure; every text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from spokehub.intelligence.calibration import Bin
from spokehub.intelligence.costs import Spend


def spend_chart(days: Sequence[Spend], *, width: int = 900, height: int = 220) -> str:
    """Bars of USD per UTC day."""
    pad_left, pad_bottom, pad_top = 64, 28, 12
    if not days:
        return (
            f'<svg class="chart" role="img" aria-label="no spend" viewBox="0 0 {width} 40">'
            '<text x="8" y="24">No LLM spend in this window.</text></svg>'
        )
    top = max(d.cost for d in days) or 1.0
    plot_w, plot_h = width - pad_left - 8, height - pad_bottom - pad_top
    step = plot_w / len(days)
    parts = [
        f'<svg class="chart" role="img" aria-label="LLM spend per day" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="4" y="{pad_top + 8}" class="axis">${top:.4f}</text>',
        f'<text x="4" y="{pad_top + plot_h}" class="axis">$0</text>',
        f'<line x1="{pad_left}" y1="{pad_top + plot_h}" x2="{width - 8}" '
        f'y2="{pad_top + plot_h}" class="axis-line" stroke="#888"/>',
    ]
    label_every = max(1, len(days) // 10)
    for i, day in enumerate(days):
        h = plot_h * day.cost / top
        x = pad_left + i * step + step * 0.1
        y = pad_top + plot_h - h
        tip = escape(f"{day.key}: ${day.cost:.6f}, {day.calls} calls")
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{step * 0.8:.1f}" '
            f'height="{h:.1f}" fill="#4a7bd0"><title>{tip}</title></rect>'
        )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{height - 8}" class="axis">{escape(day.key[5:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def reliability_diagram(bins: Sequence[Bin], *, size: int = 360) -> str:
    """Accuracy against mean confidence per bin; the diagonal is perfect calibration."""
    pad = 36
    plot = size - 2 * pad

    def x(v: float) -> float:
        return pad + v * plot

    def y(v: float) -> float:
        return pad + (1 - v) * plot

    parts = [
        f'<svg class="chart" role="img" aria-label="reliability diagram" '
        f'viewBox="0 0 {size} {size}" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{pad}" y="{pad}" width="{plot}" height="{plot}" fill="none" stroke="#888"/>',
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#bbb" '
        'stroke-dasharray="4 4"/>',
        f'<text x="{pad}" y="{size - 8}" class="axis">confidence</text>',
        f'<text x="4" y="{pad - 10}" class="axis">accuracy</text>',
    ]
    for b in bins:
        w = (b.high - b.low) * plot
        parts.append(
            f'<rect class="bin" x="{x(b.low):.1f}" y="{y(b.accuracy):.1f}" width="{w:.1f}" '
            f'height="{b.accuracy * plot:.1f}" fill="#4a7bd0" fill-opacity="0.35" '
            f'stroke="#4a7bd0"><title>{escape(_bin_tip(b))}</title></rect>'
        )
        parts.append(
            f'<circle cx="{x(b.confidence):.1f}" cy="{y(b.accuracy):.1f}" r="4" fill="#d04a4a">'
            f"<title>{escape(_bin_tip(b))}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _bin_tip(b: Bin) -> str:
    return (
        f"{b.low:.1f}-{b.high:.1f}: {b.count} decisions, confidence {b.confidence:.2f}, "
        f"accuracy {b.accuracy:.2f}"
    )
