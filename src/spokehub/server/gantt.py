"""A run's timeline drawn as an SVG Gantt chart, for the dashboard's run page.

Pure: ``(timeline, ledger events, now) -> SVG text``, no I/O and no clock, so tests parse the
output with ``xml.etree`` and the server embeds it inline (no JavaScript needed to see it).
The tree is built with ``ElementTree``, which escapes every text and attribute; names from
workflow code (step names, signal names) are untrusted and only ever reach the SVG that way.

Rows follow ``Timeline.rows``: the numbered calls, then run-level rows (cancellation,
compensations). A step row has one bar per attempt, a failed attempt drawn apart from the one
that succeeded, with the retry backoff between them as a light hatched bar. Waits (sleep,
signal, approval) are hatched; children and compensations have colours of their own.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spokehub.engine.events import Event, EventKind
from spokehub.engine.timeline import RowKind, RowStatus, Timeline, TimelineRow
from spokehub.ops.durations import format_duration

__all__ = ["Bar", "gantt_svg", "nice_ticks", "row_bars"]

LABEL_WIDTH = 210
ROW_HEIGHT = 22
BAR_HEIGHT = 12
AXIS_HEIGHT = 30
PAD_RIGHT = 18
PAD_BOTTOM = 10
MIN_BAR = 3.0
LABEL_CHARS = 30

# Fills by bar class; the dashboard's status colours (completed green, failed red, running
# blue, waiting amber, cancelled grey) plus purple for compensations and teal for children.
FILL = {
    "ok": "#2f9e44",
    "failed": "#d9480f",
    "running": "#1c7ed6",
    "backoff": "url(#gantt-hatch-amber)",
    "wait": "url(#gantt-hatch-amber)",
    "wait-done": "url(#gantt-hatch-grey)",
    "wait-failed": "url(#gantt-hatch-red)",
    "child": "#0c8599",
    "compensation": "#7048e8",
    "cancel": "#868e96",
}
_HATCH = {"amber": "#f08c00", "grey": "#adb5bd", "red": "#e03131"}
_XMLNS = "http://www.w3.org/2000/svg"
_X = Callable[[float], float]  # epoch seconds -> pixels


@dataclass(frozen=True, slots=True)
class Bar:
    """One drawn interval of a row: ``cls`` is a key of ``FILL``; ``end`` None means open."""

    cls: str
    start: float
    end: float | None
    title: str


def gantt_svg(timeline: Timeline, events: Sequence[Event], *, now: float, width: int = 960) -> str:
    """The SVG of a run's timeline, ``width`` pixels wide and as tall as its rows need."""
    rows = timeline.rows
    first, last = _span(timeline, now)
    plot = max(width - LABEL_WIDTH - PAD_RIGHT, 60)
    scale = plot / (last - first)

    def x(at: float) -> float:
        return LABEL_WIDTH + (min(max(at, first), last) - first) * scale

    height = AXIS_HEIGHT + max(len(rows), 1) * ROW_HEIGHT + PAD_BOTTOM
    svg = ET.Element(
        "svg",
        {
            "xmlns": _XMLNS,
            "class": "gantt",
            "width": str(width),
            "height": str(height),
            "viewBox": f"0 0 {width} {height}",
            "role": "img",
            "aria-label": f"timeline of {len(rows)} rows",
            "font-family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
            "font-size": "12",
        },
    )
    _defs(svg)
    _axis(svg, first, last, x, height)
    by_seq = _events_by_seq(events)
    for index, row in enumerate(rows):
        top = AXIS_HEIGHT + index * ROW_HEIGHT
        _row(svg, row, row_bars(row, by_seq.get(row.seq, []), now), top, x, width)
    if not rows:
        _text(svg, LABEL_WIDTH, AXIS_HEIGHT + 15, "no calls yet", fill="#868e96")
    _markers(svg, timeline, now, x, height)
    return ET.tostring(svg, encoding="unicode")


def row_bars(row: TimelineRow, events: Sequence[Event], now: float) -> list[Bar]:
    """The bars of one row; ``events`` are the ledger events of the row's call (its ``seq``)."""
    if row.started_at is None:
        return []
    label = _label(row)
    if row.kind is RowKind.STEP:
        return _attempt_bars(row, events, now)
    if row.kind in (RowKind.TIMER, RowKind.SIGNAL, RowKind.APPROVAL):
        cls = "wait" if row.status.open else "wait-done"
        if row.status in (RowStatus.TIMED_OUT, RowStatus.REJECTED):
            cls = "wait-failed"
        return [Bar(cls, row.started_at, _end(row, now), f"{label}: {row.status.value}")]
    if row.kind is RowKind.CHILD:
        cls = "failed" if row.status is RowStatus.FAILED else "child"
        child = row.info.get("child_id", "")
        return [Bar(cls, row.started_at, _end(row, now), f"child run {child}: {row.status}")]
    if row.kind is RowKind.COMPENSATION:
        cls = "compensation" if row.status is RowStatus.COMPENSATED else "failed"
        why = f" — {row.error}" if row.error else ""
        return [Bar(cls, row.started_at, row.ended_at, f"{label}: {row.status.value}{why}")]
    return [Bar("cancel", row.started_at, row.ended_at, "cancel requested")]


def _attempt_bars(row: TimelineRow, events: Sequence[Event], now: float) -> list[Bar]:
    bars: list[Bar] = []
    open_start: Event | None = None
    for event in events:
        data = event.data
        if event.kind is EventKind.STEP_STARTED:
            open_start = event
            continue
        if event.kind not in _ATTEMPT_ENDS:
            continue
        attempt = int(data.get("attempt", data.get("attempts", len(bars) + 1)))
        began = float(data.get("started_at", open_start.at if open_start else event.at))
        ended = began + float(data.get("duration", event.at - began))
        open_start = None
        took = format_duration(ended - began)
        if event.kind is EventKind.STEP_COMPLETED:
            bars.append(Bar("ok", began, ended, f"{row.name}: attempt {attempt} ok ({took})"))
            continue
        error = _error_text(data.get("error"))
        bars.append(
            Bar("failed", began, ended, f"{row.name}: attempt {attempt} failed ({took}){error}")
        )
        if event.kind is EventKind.RETRY_SCHEDULED:
            retry_at = float(data.get("retry_at", ended))
            bars.append(Bar("backoff", ended, retry_at, f"{row.name}: backoff before a retry"))
    if open_start is not None:
        attempt = open_start.data.get("attempt", "?")
        end = None if row.status.open else row.ended_at or open_start.at
        cls = "running" if row.status.open else "cancel"
        bars.append(Bar(cls, open_start.at, end, f"{row.name}: attempt {attempt} {row.status}"))
    return bars


_ATTEMPT_ENDS = (EventKind.STEP_COMPLETED, EventKind.STEP_FAILED, EventKind.RETRY_SCHEDULED)


def _error_text(error: object) -> str:
    if not isinstance(error, dict):
        return ""
    message = str(error.get("message", ""))
    return f" — {error.get('type', 'Error')}: {message}" if message else f" — {error.get('type')}"


def _end(row: TimelineRow, now: float) -> float | None:
    if row.ended_at is not None:
        return row.ended_at
    return None if row.status.open else row.started_at


def nice_ticks(span: float, target: int = 7) -> list[float]:
    """Offsets from 0 to ``span`` at a round step (1, 2 or 5 times a power of ten seconds,
    or whole minutes/hours/days once the span is long), about ``target`` of them."""
    if span <= 0:
        return [0.0]
    raw = span / target
    step = _round_step(raw)
    count = math.floor(span / step + 1e-9)
    return [round(i * step, 9) for i in range(count + 1)]


_HUMAN_STEPS = (
    10.0,
    15.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    10800.0,
    21600.0,
    43200.0,
    86400.0,
    172800.0,
    604800.0,
)


def _round_step(raw: float) -> float:
    if 5 < raw <= _HUMAN_STEPS[-1]:
        return next(step for step in _HUMAN_STEPS if step >= raw)
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _tick_label(offset: float) -> str:
    if offset == 0:
        return "0"
    return format_duration(offset)


def _span(timeline: Timeline, now: float) -> tuple[float, float]:
    span = timeline.span or (now, now)
    first, last = span
    if timeline.status is None:  # still going: the axis reaches to now
        last = max(last, now)
    if last - first <= 0:
        last = first + 1.0
    return first, last


def _events_by_seq(events: Sequence[Event]) -> dict[int | None, list[Event]]:
    grouped: dict[int | None, list[Event]] = {}
    for event in events:
        if event.seq is not None and event.kind is not EventKind.COMPENSATION_RAN:
            grouped.setdefault(event.seq, []).append(event)
    return grouped


def _label(row: TimelineRow) -> str:
    if row.kind is RowKind.STEP:
        return row.name
    if row.kind is RowKind.TIMER:
        return "sleep"
    if row.kind is RowKind.COMPENSATION:
        return f"undo {row.name}"
    if row.kind is RowKind.CANCELLATION:
        return "cancel requested"
    return f"{row.kind.value} {row.name}"


def _clean(text: str) -> str:
    """XML 1.0 cannot carry most control characters, even escaped; drop them."""
    return "".join(ch for ch in text if ch >= " " or ch in "\t\n")


def _text(parent: ET.Element, x: float, y: float, text: str, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, "text", {"x": f"{x:.1f}", "y": f"{y:.1f}", **attrs})
    node.text = _clean(text)
    return node


def _title(parent: ET.Element, text: str) -> None:
    ET.SubElement(parent, "title").text = _clean(text)


def _defs(svg: ET.Element) -> None:
    defs = ET.SubElement(svg, "defs")
    for name, colour in _HATCH.items():
        pattern = ET.SubElement(
            defs,
            "pattern",
            {
                "id": f"gantt-hatch-{name}",
                "width": "6",
                "height": "6",
                "patternUnits": "userSpaceOnUse",
                "patternTransform": "rotate(45)",
            },
        )
        ET.SubElement(
            pattern, "rect", {"width": "6", "height": "6", "fill": colour, "fill-opacity": "0.18"}
        )
        ET.SubElement(
            pattern,
            "line",
            {"x1": "0", "y1": "0", "x2": "0", "y2": "6", "stroke": colour, "stroke-width": "2.5"},
        )


def _axis(svg: ET.Element, first: float, last: float, x: _X, height: int) -> None:
    axis = ET.SubElement(svg, "g", {"class": "axis"})
    for offset in nice_ticks(last - first):
        at = x(first + offset)
        ET.SubElement(
            axis,
            "line",
            {
                "class": "tick",
                "x1": f"{at:.1f}",
                "x2": f"{at:.1f}",
                "y1": str(AXIS_HEIGHT - 6),
                "y2": str(height - PAD_BOTTOM),
                "stroke": "#e9ecef",
            },
        )
        _text(
            axis,
            at,
            AXIS_HEIGHT - 10,
            _tick_label(offset),
            fill="#868e96",
            **{"text-anchor": "middle", "class": "tick-label"},
        )


def _row(svg: ET.Element, row: TimelineRow, bars: list[Bar], top: int, x: _X, width: int) -> None:
    group = ET.SubElement(svg, "g", {"class": f"row {row.kind.value} {row.status.value}"})
    if (top // ROW_HEIGHT) % 2 == 0:
        ET.SubElement(
            group,
            "rect",
            {
                "x": "0",
                "y": str(top),
                "width": str(width),
                "height": str(ROW_HEIGHT),
                "fill": "#f8f9fa",
            },
        )
    label = _label(row)
    prefix = f"{row.seq}. " if row.seq is not None and row.kind is not RowKind.COMPENSATION else ""
    shown = prefix + label
    if len(shown) > LABEL_CHARS:
        shown = shown[: LABEL_CHARS - 1] + "…"
    text = _text(group, 8, top + ROW_HEIGHT / 2 + 4, shown, fill="#212529", **{"class": "label"})
    _title(text, f"{prefix}{label} — {row.status.value}")
    mid = top + (ROW_HEIGHT - BAR_HEIGHT) / 2
    right_edge = width - PAD_RIGHT
    for bar in bars:
        left = x(bar.start)
        right = right_edge if bar.end is None else x(bar.end)
        rect = ET.SubElement(
            group,
            "rect",
            {
                "class": f"bar {bar.cls}" + (" open" if bar.end is None else ""),
                "x": f"{left:.1f}",
                "y": f"{mid:.1f}",
                "width": f"{max(right - left, MIN_BAR):.1f}",
                "height": str(BAR_HEIGHT),
                "rx": "2",
                "fill": FILL[bar.cls],
            },
        )
        if bar.cls in ("backoff", "wait", "wait-done", "wait-failed"):
            rect.set(
                "stroke",
                _HATCH[
                    "red"
                    if bar.cls == "wait-failed"
                    else "grey"
                    if bar.cls == "wait-done"
                    else "amber"
                ],
            )
            rect.set("stroke-width", "1")
        _title(rect, bar.title)


def _markers(svg: ET.Element, timeline: Timeline, now: float, x: _X, height: int) -> None:
    marks: list[tuple[str, float, str, str]] = []
    if timeline.started_at is not None:
        marks.append(("start", timeline.started_at, "#495057", "run started"))
    if timeline.ended_at is not None:
        marks.append(("end", timeline.ended_at, "#495057", f"run {timeline.status or 'ended'}"))
    elif timeline.started_at is not None:
        marks.append(("now", now, "#1c7ed6", "now"))
    for cls, at, colour, title in marks:
        line = ET.SubElement(
            svg,
            "line",
            {
                "class": f"marker {cls}",
                "x1": f"{x(at):.1f}",
                "x2": f"{x(at):.1f}",
                "y1": str(AXIS_HEIGHT - 4),
                "y2": str(height - PAD_BOTTOM),
                "stroke": colour,
                "stroke-width": "1.5",
                "stroke-dasharray": "4 3" if cls == "now" else "none",
            },
        )
        _title(line, title)
