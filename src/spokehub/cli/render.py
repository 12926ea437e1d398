"""Rich renderings of runs and timelines. Pure functions from data to renderables."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from spokehub.engine.timeline import RowKind, RowStatus, Timeline, TimelineRow
from spokehub.ops import RunView, format_duration, run_duration
from spokehub.store.base import RunRecord

RUN_STYLE = {
    "pending": "dim",
    "running": "cyan",
    "waiting": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}

ROW_STYLE = {
    RowStatus.COMPLETED: "green",
    RowStatus.FAILED: "red",
    RowStatus.RETRYING: "yellow",
    RowStatus.RUNNING: "cyan",
    RowStatus.WAITING: "yellow",
    RowStatus.TIMED_OUT: "red",
    RowStatus.REJECTED: "red",
    RowStatus.COMPENSATED: "blue",
    RowStatus.CANCELLED: "magenta",
    RowStatus.REQUESTED: "magenta",
    RowStatus.ABANDONED: "magenta",
}

ROW_MARK = {
    RowStatus.COMPLETED: "✓",
    RowStatus.FAILED: "✗",
    RowStatus.RETRYING: "↻",
    RowStatus.RUNNING: "…",
    RowStatus.WAITING: "⏸",
    RowStatus.TIMED_OUT: "✗",
    RowStatus.REJECTED: "✗",
    RowStatus.COMPENSATED: "↩",
    RowStatus.CANCELLED: "■",
    RowStatus.REQUESTED: "■",
    RowStatus.ABANDONED: "■",
}

GANTT_WIDTH = 24


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def short_json(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_status(status: str) -> Text:
    return Text(status, style=RUN_STYLE.get(status, ""))


def runs_table(runs: list[RunRecord], now: float) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "workflow", "status", "created", "duration"):
        table.add_column(column, no_wrap=column != "workflow")
    for run in runs:
        took = format_duration(run_duration(run, now))
        table.add_row(
            run.id,
            run.workflow,
            run_status(run.status.value),
            when(run.created_at),
            took if run.status.finished else f"{took}…",
        )
    return table


def call_label(row: TimelineRow) -> str:
    if row.kind is RowKind.STEP:
        return row.name
    if row.kind is RowKind.TIMER:
        return "sleep"
    if row.kind is RowKind.COMPENSATION:
        return f"undo {row.name}"
    if row.kind is RowKind.CANCELLATION:
        return "cancel requested"
    return f"{row.kind.value} {row.name!r}"


def gantt(row: TimelineRow, span: tuple[float, float], now: float, width: int) -> Text:
    """A bar placed on the run's time axis; open rows reach to now."""
    bar = Text()
    if row.started_at is None:
        return bar
    start, end = span
    total = end - start
    first = row.started_at
    last = row.ended_at if row.ended_at is not None else (now if row.status.open else first)
    if total <= 0:
        left, right = 0, width
    else:
        left = min(width - 1, int((first - start) / total * width))
        right = min(width, max(left + 1, math.ceil((last - start) / total * width)))
    bar.append(" " * left)
    glyph = "▒" if row.status.open else "█"
    bar.append(glyph * (right - left), style=ROW_STYLE.get(row.status, ""))
    bar.append(" " * (width - right))
    return bar


def timeline_table(timeline: Timeline, now: float, *, finished: bool) -> Table | None:
    if not timeline.rows:
        return None
    span = timeline.span or (now, now)
    if not finished:
        span = (span[0], max(span[1], now))
    axis = f"0 → {format_duration(span[1] - span[0])}"
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("call")
    table.add_column("status")
    table.add_column("tries", justify="right")
    table.add_column("took", justify="right")
    table.add_column(axis, no_wrap=True)
    for row in timeline.rows:
        style = ROW_STYLE.get(row.status, "")
        table.add_row(
            str(row.seq) if row.seq is not None and row.kind is not RowKind.COMPENSATION else "",
            call_label(row),
            Text(f"{ROW_MARK.get(row.status, '')} {row.status.value}", style=style),
            str(row.attempts) if row.kind is RowKind.STEP or row.attempts else "",
            format_duration(row.duration) if row.duration is not None else "",
            gantt(row, span, now, GANTT_WIDTH),
        )
    return table


def wait_hint(run_id: str, kind: RowKind, name: str, deadline: float | None, db_flag: str) -> str:
    """The command that unblocks a run waiting for a signal or an approval."""
    until = f" (until {when(deadline)})" if deadline is not None else ""
    if kind is RowKind.APPROVAL:
        return (
            f"waiting for approval {name!r}{until} — approve with: "
            f"spokehub {db_flag}approve {run_id}"
        )
    return (
        f"waiting for signal {name!r}{until} — send it with: "
        f"spokehub {db_flag}signal {run_id} {name} --payload JSON"
    )


def run_detail(view: RunView, *, db_flag: str = "") -> RenderableType:
    run = view.run
    head = Text()
    head.append(f"run {run.id}", style="bold")
    head.append(f"  {run.workflow}  ")
    head.append_text(run_status(run.status.value))
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    took = format_duration(run_duration(run, view.now))
    facts.add_row("version", f"{run.version or '-'}  (queue {run.queue})")
    facts.add_row("created", when(run.created_at))
    if run.finished_at is not None:
        facts.add_row("finished", f"{when(run.finished_at)}  (took {took})")
    else:
        facts.add_row("running for", took)
    if view.timeline.forked_from:
        fork = view.timeline
        facts.add_row("forked from", f"{fork.forked_from} at call #{fork.from_step}")
    if run.parent_id:
        facts.add_row("parent", run.parent_id)
    facts.add_row("input", short_json(run.input))
    if run.status.value == "completed":
        facts.add_row("result", short_json(run.result))
    if run.error:
        facts.add_row("error", Text(f"{run.error.get('type')}: {run.error.get('message')}", "red"))
    llm = view.llm
    if llm.calls:
        hits = f", {llm.cache_hits} from the cache" if llm.cache_hits else ""
        facts.add_row(
            "LLM cost",
            f"${llm.cost:.6f} in {len(llm.calls)} call(s), {llm.prompt_tokens} prompt + "
            f"{llm.completion_tokens} completion tokens{hits}",
        )
    parts: list[RenderableType] = [head, facts]
    for row in view.waits:
        hint = wait_hint(run.id, row.kind, row.name, row.info.get("deadline"), db_flag)
        parts.append(Text(hint, style="yellow"))
    table = timeline_table(view.timeline, view.now, finished=run.status.finished)
    parts.append(Text(""))
    parts.append(table if table is not None else Text("no calls yet", style="dim"))
    parts.extend(row_notes(view.timeline))
    return Group(*parts)


def row_notes(timeline: Timeline) -> list[Text]:
    """Errors and retry times under the table, where long messages have room."""
    notes = []
    for row in timeline.rows:
        where = f"#{row.seq} " if row.seq is not None else ""
        if row.error is not None:
            notes.append(Text(f"  {where}{call_label(row)}: {row.error}", style="red"))
        elif row.status is RowStatus.RETRYING and "retry_at" in row.info:
            retry = when(row.info["retry_at"])
            notes.append(Text(f"  {where}{call_label(row)}: retry at {retry}", style="yellow"))
    if notes:
        notes.insert(0, Text(""))
    return notes
