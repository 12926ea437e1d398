"""A run's ledger as rows for people: one row per numbered call, plus run-level rows.

Pure and presentation-free: the CLI draws these rows as a table with a Gantt bar, the HTTP
dashboard serves ``Timeline.to_dict()``. Times are the ledger's epoch seconds; ``now`` is passed
in (for the duration of what still runs) because the engine reads no clock.

Example:
    >>> timeline = build_timeline(client.events(run_id), now=time.time())  # doctest: +SKIP
    >>> [(row.seq, row.name, row.status) for row in timeline.calls]
    [(1, 'reserve', 'completed'), (2, 'charge', 'retrying')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from spokehub.engine.approvals import ApprovalRules, approval_state
from spokehub.engine.events import CallKind, Event, EventKind
from spokehub.engine.history import CallRecord, History

__all__ = ["ErrorInfo", "RowKind", "RowStatus", "Timeline", "TimelineRow", "build_timeline"]


class RowKind(StrEnum):
    """What a row shows: a call of the workflow code, or something that happened to the run."""

    STEP = "step"
    TIMER = "timer"
    SIGNAL = "signal"
    APPROVAL = "approval"
    CHILD = "child"
    COMPENSATION = "compensation"
    CANCELLATION = "cancellation"


class RowStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    RETRYING = "retrying"
    RUNNING = "running"
    WAITING = "waiting"
    TIMED_OUT = "timed_out"
    REJECTED = "rejected"
    COMPENSATED = "compensated"
    CANCELLED = "cancelled"
    REQUESTED = "requested"
    ABANDONED = "abandoned"

    @property
    def open(self) -> bool:
        """Still in progress: its end is not in the ledger yet."""
        return self in (RowStatus.RUNNING, RowStatus.WAITING, RowStatus.RETRYING)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    type: str
    message: str

    @classmethod
    def of(cls, data: Any) -> ErrorInfo | None:
        if not isinstance(data, dict):
            return None
        return cls(str(data.get("type", "Error")), str(data.get("message", "")))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message}

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One call (``seq``) or one run-level happening, with its outcome and timing.

    ``info`` holds kind-specific facts (a timer's ``due``, a retry's ``retry_at``, an
    approval's ``by``/``comment``, a child's ``child_id``, a signal's ``payload``).
    """

    kind: RowKind
    name: str
    status: RowStatus
    seq: int | None = None
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    duration: float | None = None
    error: ErrorInfo | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind.value,
            "name": self.name,
            "status": self.status.value,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "error": self.error.to_dict() if self.error else None,
            "info": self.info,
        }


@dataclass(frozen=True, slots=True)
class Timeline:
    """Rows of a run: ``calls`` in call order, then ``run_rows`` in ledger order."""

    calls: tuple[TimelineRow, ...]
    run_rows: tuple[TimelineRow, ...]
    started_at: float | None
    ended_at: float | None
    status: str | None  # the status recorded by run_finished, None while the run goes on
    forked_from: str | None = None
    from_step: int | None = None

    @property
    def rows(self) -> tuple[TimelineRow, ...]:
        return self.calls + self.run_rows

    @property
    def span(self) -> tuple[float, float] | None:
        """The earliest start and latest end among the run and its rows (for a Gantt axis)."""
        starts = [r.started_at for r in self.rows if r.started_at is not None]
        ends = [r.ended_at for r in self.rows if r.ended_at is not None]
        if self.started_at is not None:
            starts.append(self.started_at)
        if self.ended_at is not None:
            ends.append(self.ended_at)
        if not starts:
            return None
        first = min(starts)
        return first, max([first, *starts, *ends])

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "status": self.status,
            "forked_from": self.forked_from,
            "from_step": self.from_step,
            "steps": [row.to_dict() for row in self.calls],
            "run_events": [row.to_dict() for row in self.run_rows],
        }


def build_timeline(events: Sequence[Event], *, now: float | None = None) -> Timeline:
    """Turn a run's ledger into rows. ``now`` gives open rows a duration so far."""
    history = History(list(events))
    started = history.first(EventKind.RUN_STARTED)
    finished = history.first(EventKind.RUN_FINISHED)
    end_status = str(finished.data.get("status")) if finished is not None else None
    compensated = {
        e.seq: e for e in history.events if e.kind is EventKind.COMPENSATION_RAN and e.seq
    }
    calls = tuple(
        _call_row(record, compensated.get(seq), end_status, now)
        for seq, record in sorted(history.calls.items())
    )
    fork = started.data if started is not None else {}
    return Timeline(
        calls=calls,
        run_rows=tuple(_run_rows(history.events)),
        started_at=started.at if started is not None else None,
        ended_at=finished.at if finished is not None else None,
        status=end_status,
        forked_from=fork.get("forked_from"),
        from_step=fork.get("from_step"),
    )


@dataclass(slots=True)
class _Outcome:
    status: RowStatus
    attempts: int = 0
    error: ErrorInfo | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _call_row(
    record: CallRecord, undo: Event | None, end_status: str | None, now: float | None
) -> TimelineRow:
    outcome = _OUTCOMES[record.kind](record)
    resolution = record.resolution
    if outcome.status.open and end_status is not None:
        # The run ended while this call was still open (cancelled, or a fatal error).
        closed = RowStatus.CANCELLED if end_status == "cancelled" else RowStatus.ABANDONED
        outcome.status = closed
    if undo is not None and outcome.status is RowStatus.COMPLETED and undo.data.get("ok"):
        outcome.status = RowStatus.COMPENSATED
        outcome.info["compensated_at"] = undo.at
    started_at = record.events[0].at if record.events else None
    ended_at = resolution.at if resolution is not None else None
    duration = _duration(started_at, ended_at, now if outcome.status.open else None)
    return TimelineRow(
        kind=RowKind(record.kind.value),
        name=record.name,
        status=outcome.status,
        seq=record.seq,
        attempts=outcome.attempts,
        started_at=started_at,
        ended_at=ended_at,
        duration=duration,
        error=outcome.error,
        info=outcome.info,
    )


def _duration(start: float | None, end: float | None, now: float | None) -> float | None:
    if start is None:
        return None
    stop = end if end is not None else now
    if stop is None:
        return None
    return max(0.0, stop - start)


def _step(record: CallRecord) -> _Outcome:
    attempts = record.attempts_made
    done = record.last(EventKind.STEP_COMPLETED)
    if done is not None:
        return _Outcome(RowStatus.COMPLETED, int(done.data.get("attempt", attempts or 1)))
    failed = record.last(EventKind.STEP_FAILED)
    if failed is not None:
        tries = int(failed.data.get("attempts", attempts))
        return _Outcome(RowStatus.FAILED, tries, ErrorInfo.of(failed.data.get("error")))
    last = record.events[-1] if record.events else None
    retry = record.last(EventKind.RETRY_SCHEDULED)
    error = ErrorInfo.of(retry.data.get("error")) if retry is not None else None
    if last is not None and last.kind is EventKind.RETRY_SCHEDULED:
        return _Outcome(RowStatus.RETRYING, attempts, error, {"retry_at": last.data["retry_at"]})
    return _Outcome(RowStatus.RUNNING, attempts, error)


def _timer(record: CallRecord) -> _Outcome:
    timer_set = record.last(EventKind.TIMER_SET)
    info = {"due": timer_set.data.get("due")} if timer_set is not None else {}
    if record.last(EventKind.TIMER_FIRED) is not None:
        return _Outcome(RowStatus.COMPLETED, info=info)
    return _Outcome(RowStatus.WAITING, info=info)


def _wait(record: CallRecord) -> _Outcome:
    """A signal or an approval."""
    first = record.events[0] if record.events else None
    info: dict[str, Any] = {}
    if first is not None and first.data.get("deadline") is not None:
        info["deadline"] = first.data["deadline"]
    if first is not None and record.kind is CallKind.APPROVAL:
        rules = ApprovalRules.from_data(first.data)
        state = approval_state(rules, record.events)
        info["subject"] = first.data.get("subject")
        info["assignees"] = state.assignees
        info["quorum"] = rules.quorum
        if state.deadline is not None:
            info["deadline"] = state.deadline
        if state.reminders:
            info["reminders"] = state.reminders
        if state.escalated:
            info["escalated"] = True
    resolution = record.resolution
    if resolution is None:
        return _Outcome(RowStatus.WAITING, info=info)
    if resolution.kind is EventKind.WAIT_TIMED_OUT:
        what = f"{record.kind.value} {record.name!r}"
        error = ErrorInfo("WaitTimeout", f"{what} did not come in time")
        return _Outcome(RowStatus.TIMED_OUT, error=error, info=info)
    if resolution.kind is EventKind.SIGNAL_RECEIVED:
        info["payload"] = resolution.data.get("payload")
        return _Outcome(RowStatus.COMPLETED, info=info)
    data = resolution.data
    info.update(approved=bool(data.get("approved")), by=data.get("by"), comment=data.get("comment"))
    if data.get("approved"):
        return _Outcome(RowStatus.COMPLETED, info=info)
    why = f": {data['comment']}" if data.get("comment") else ""
    error = ErrorInfo(
        "ApprovalRejected", f"rejected by {data.get('by') or 'someone'}{why}".rstrip()
    )
    return _Outcome(RowStatus.REJECTED, error=error, info=info)


def _child(record: CallRecord) -> _Outcome:
    started = record.last(EventKind.CHILD_STARTED)
    info = {"child_id": started.data.get("child_id")} if started is not None else {}
    done = record.last(EventKind.CHILD_FINISHED)
    if done is None:
        return _Outcome(RowStatus.RUNNING, info=info)
    status = str(done.data.get("status", "failed"))
    info["child_status"] = status
    if status == "completed":
        return _Outcome(RowStatus.COMPLETED, info=info)
    error = ErrorInfo.of(done.data.get("error")) or ErrorInfo("ChildRunFailed", f"child {status}")
    return _Outcome(RowStatus.FAILED, error=error, info=info)


_OUTCOMES = {
    CallKind.STEP: _step,
    CallKind.TIMER: _timer,
    CallKind.SIGNAL: _wait,
    CallKind.APPROVAL: _wait,
    CallKind.CHILD: _child,
}


def _run_rows(events: Sequence[Event]) -> list[TimelineRow]:
    rows: list[TimelineRow] = []
    previous: Event | None = None
    for event in events:
        if event.kind is EventKind.CANCEL_REQUESTED:
            rows.append(
                TimelineRow(
                    kind=RowKind.CANCELLATION,
                    name="cancel",
                    status=RowStatus.REQUESTED,
                    started_at=event.at,
                    ended_at=event.at,
                    duration=0.0,
                )
            )
        elif event.kind is EventKind.COMPENSATION_RAN:
            rows.append(_compensation_row(event, previous))
        previous = event
    return rows


def _compensation_row(event: Event, previous: Event | None) -> TimelineRow:
    # Compensations run one after another once the saga starts, and each one is committed
    # when it ends; so the event before it marks when it began.
    ok = bool(event.data.get("ok"))
    start = previous.at if previous is not None else event.at
    return TimelineRow(
        kind=RowKind.COMPENSATION,
        name=str(event.data.get("name", "")),
        status=RowStatus.COMPENSATED if ok else RowStatus.FAILED,
        seq=event.seq,
        attempts=int(event.data.get("attempts", 0)),
        started_at=start,
        ended_at=event.at,
        duration=max(0.0, event.at - start),
        error=None if ok else ErrorInfo.of(event.data.get("error")),
    )
