"""Live progress of a run executed by ``spokehub run``: one printed line per ledger event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.text import Text

from spokehub.cli.render import wait_hint
from spokehub.engine.events import Event, EventKind
from spokehub.engine.timeline import RowKind
from spokehub.ops import Progress, format_duration


def _err(data: dict[str, Any]) -> str:
    error = data.get("error") or {}
    if not isinstance(error, dict):
        return str(error)
    message = error.get("message")
    kind = str(error.get("type", "Error"))
    return f"{kind}: {message}" if message else kind


def _clock(ts: Any) -> str:
    return datetime.fromtimestamp(float(ts)).strftime("%H:%M:%S") if ts is not None else "?"


def _step_line(event: Event) -> tuple[str, str] | None:
    d = event.data
    name = f"#{event.seq} {d.get('name', '')}"
    if event.kind is EventKind.STEP_COMPLETED:
        took = format_duration(float(d.get("duration", 0.0)))
        tries = f" (attempt {d['attempt']})" if int(d.get("attempt", 1)) > 1 else ""
        return "green", f"✓ {name}  {took}{tries}"
    if event.kind is EventKind.RETRY_SCHEDULED:
        wait = format_duration(max(0.0, float(d.get("retry_at", event.at)) - event.at))
        return "yellow", f"↻ {name} attempt {d.get('attempt')} failed: {_err(d)}; retry in {wait}"
    if event.kind is EventKind.STEP_FAILED:
        return "red", f"✗ {name} failed after {d.get('attempts')} attempt(s): {_err(d)}"
    return None


def _wait_line(event: Event) -> tuple[str, str] | None:
    d = event.data
    seq = f"#{event.seq}"
    if event.kind is EventKind.TIMER_SET:
        return "dim", f"⏲ {seq} sleep until {_clock(d.get('due'))}"
    if event.kind is EventKind.TIMER_FIRED:
        return "green", f"✓ {seq} sleep"
    if event.kind is EventKind.SIGNAL_RECEIVED:
        return "green", f"✓ {seq} signal {d.get('name')!r} received"
    if event.kind is EventKind.APPROVAL_DECIDED:
        by = f" by {d['by']}" if d.get("by") else ""
        why = f": {d['comment']}" if d.get("comment") else ""
        if d.get("approved"):
            return "green", f"✓ {seq} approval {d.get('name')!r} approved{by}{why}"
        return "red", f"✗ {seq} approval {d.get('name')!r} rejected{by}{why}"
    if event.kind is EventKind.WAIT_TIMED_OUT:
        return "red", f"✗ {seq} {d.get('call')} {d.get('name')!r} timed out"
    if event.kind is EventKind.CHILD_STARTED:
        return "dim", f"→ {seq} child {d.get('name')!r} started as run {d.get('child_id')}"
    if event.kind is EventKind.CHILD_FINISHED:
        ok = d.get("status") == "completed"
        text = f"{seq} child {d.get('name')!r} {d.get('status')}"
        return ("green", f"✓ {text}") if ok else ("red", f"✗ {text}")
    return None


def _run_line(event: Event) -> tuple[str, str] | None:
    d = event.data
    if event.kind is EventKind.CANCEL_REQUESTED:
        return "magenta", "■ cancellation requested"
    if event.kind is EventKind.COMPENSATION_STARTED:
        return "blue", f"↩ run {d.get('status')}; undoing completed steps, newest first"
    if event.kind is EventKind.COMPENSATION_RAN:
        if d.get("ok"):
            return "blue", f"↩ undid #{event.seq} {d.get('name')}"
        return "red", f"✗ undo of #{event.seq} {d.get('name')} failed: {_err(d)}"
    return None


def _approval_line(event: Event) -> tuple[str, str] | None:
    d = event.data
    if event.kind is EventKind.APPROVAL_REMINDED:
        who = ", ".join(d.get("assignees") or ()) or "anyone"
        return (
            "yellow",
            f"⏰ #{event.seq} approval {d.get('name')!r} reminder {d.get('n')} to {who}",
        )
    if event.kind is EventKind.APPROVAL_ESCALATED:
        to = ", ".join(d.get("to") or ())
        return "yellow", f"⇧ #{event.seq} approval {d.get('name')!r} escalated to {to}"
    return None


def event_line(event: Event) -> tuple[str, str] | None:
    """(style, text) of one ledger event, or None for events not worth a line."""
    return _step_line(event) or _wait_line(event) or _approval_line(event) or _run_line(event)


@dataclass
class ProgressPrinter:
    """Prints new ledger events as they come, and a hint when the run needs someone."""

    console: Console
    run_id: str
    db_flag: str = ""
    hinted: set[int] = field(default_factory=set)
    status_text: str = "starting"

    def show(self, progress: Progress) -> None:
        for event in progress.new_events:
            self._event(event)
        self.status_text = f"{progress.run.workflow} {self.run_id}: {progress.run.status.value}"

    def _event(self, event: Event) -> None:
        if event.kind in (EventKind.SIGNAL_WAITING, EventKind.APPROVAL_REQUESTED):
            if event.seq is not None and event.seq not in self.hinted:
                self.hinted.add(event.seq)
                approval = event.kind is EventKind.APPROVAL_REQUESTED
                kind = RowKind.APPROVAL if approval else RowKind.SIGNAL
                name = str(event.data.get("name"))
                deadline = event.data.get("deadline")
                hint = wait_hint(self.run_id, kind, name, deadline, self.db_flag)
                self.console.print(Text(hint, style="yellow"), soft_wrap=True)
            return
        line = event_line(event)
        if line is not None:
            style, text = line
            self.console.print(Text(f"  {text}", style=style), soft_wrap=True)
