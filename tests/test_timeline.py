"""The timeline: a ledger turned into rows (pure; ledgers are written by hand here)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spokehub import Client, RetryPolicy, step, workflow
from spokehub.engine.events import Event, EventKind
from spokehub.engine.timeline import RowKind, RowStatus, build_timeline
from spokehub.testing import FakeClock, run_until_idle

K = EventKind


class Ledger:
    """Builds a ledger in order, with explicit times."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.add(K.RUN_STARTED, None, 100.0, workflow="wf")

    def add(self, kind: EventKind, seq: int | None, at: float, **data: Any) -> Ledger:
        self.events.append(Event(len(self.events), kind, at, seq, data))
        return self


def test_completed_step_row_has_times_duration_and_attempt() -> None:
    ledger = (
        Ledger()
        .add(K.STEP_STARTED, 1, 101.0, name="reserve", attempt=1)
        .add(K.STEP_COMPLETED, 1, 101.5, name="reserve", attempt=1, result="r-1")
        .add(K.RUN_FINISHED, None, 102.0, status="completed", result="r-1")
    )
    timeline = build_timeline(ledger.events)
    [row] = timeline.calls
    assert (row.seq, row.kind, row.name, row.status) == (1, RowKind.STEP, "reserve", "completed")
    assert (row.attempts, row.started_at, row.ended_at, row.duration) == (1, 101.0, 101.5, 0.5)
    assert row.error is None
    assert (timeline.started_at, timeline.ended_at, timeline.status) == (100.0, 102.0, "completed")
    assert timeline.run_rows == ()


def test_step_in_backoff_is_retrying_with_last_error_and_retry_time() -> None:
    ledger = (
        Ledger()
        .add(K.STEP_STARTED, 1, 101.0, name="charge", attempt=1)
        .add(
            K.RETRY_SCHEDULED,
            1,
            101.2,
            name="charge",
            attempt=1,
            error={"type": "TimeoutError", "message": "gateway"},
            retry_at=103.2,
        )
    )
    [row] = build_timeline(ledger.events, now=102.0).calls
    assert row.status is RowStatus.RETRYING
    assert row.attempts == 1
    assert row.error is not None
    assert str(row.error) == "TimeoutError: gateway"
    assert row.info == {"retry_at": 103.2}
    assert row.ended_at is None
    assert row.duration == pytest.approx(1.0)  # so far, by the given now


def test_second_attempt_running_then_failed_for_good() -> None:
    ledger = (
        Ledger()
        .add(K.STEP_STARTED, 1, 101.0, name="charge", attempt=1)
        .add(K.RETRY_SCHEDULED, 1, 101.1, name="charge", attempt=1, error={}, retry_at=101.3)
        .add(K.STEP_STARTED, 1, 101.3, name="charge", attempt=2)
    )
    [running] = build_timeline(ledger.events).calls
    assert (running.status, running.attempts, running.duration) == ("running", 2, None)
    error = {"type": "ValueError", "message": "declined"}
    ledger.add(K.STEP_FAILED, 1, 101.4, name="charge", attempts=2, error=error)
    [failed] = build_timeline(ledger.events, now=500.0).calls
    assert (failed.status, failed.attempts) == (RowStatus.FAILED, 2)
    assert failed.error is not None
    assert failed.error.to_dict() == error
    assert failed.duration == pytest.approx(0.4)  # closed rows ignore now


def test_timer_signal_approval_and_child_rows() -> None:
    ledger = (
        Ledger()
        .add(K.TIMER_SET, 1, 101.0, name="sleep", due=161.0)
        .add(K.TIMER_FIRED, 1, 161.0, name="sleep")
        .add(K.SIGNAL_WAITING, 2, 162.0, name="go", deadline=None)
        .add(K.SIGNAL_RECEIVED, 2, 170.0, name="go", payload={"n": 1}, inbox_id=1)
        .add(K.APPROVAL_REQUESTED, 3, 171.0, name="editor", subject="d", assignees=[], deadline=9e9)
        .add(K.APPROVAL_DECIDED, 3, 180.0, name="editor", approved=True, by="ann", comment="ok")
        .add(K.CHILD_STARTED, 4, 181.0, name="sub", child_id="r.4")
        .add(
            K.CHILD_FINISHED,
            4,
            185.0,
            name="sub",
            child_id="r.4",
            status="failed",
            error={"type": "StepFailed", "message": "x"},
        )
    )
    timer, sig, appr, child = build_timeline(ledger.events).calls
    assert (timer.kind, timer.name, timer.status, timer.info) == (
        RowKind.TIMER,
        "sleep",
        RowStatus.COMPLETED,
        {"due": 161.0},
    )
    assert timer.duration == 60.0
    assert (sig.kind, sig.status, sig.info["payload"]) == (RowKind.SIGNAL, "completed", {"n": 1})
    assert appr.kind is RowKind.APPROVAL
    assert appr.status is RowStatus.COMPLETED
    assert appr.info["by"] == "ann"
    assert appr.info["comment"] == "ok"
    assert appr.info["deadline"] == 9e9
    assert appr.info["subject"] == "d"
    assert (child.kind, child.status, child.info["child_id"]) == (RowKind.CHILD, "failed", "r.4")
    assert child.error is not None
    assert child.error.type == "StepFailed"


def test_waits_open_rejected_and_timed_out() -> None:
    ledger = (
        Ledger()
        .add(K.APPROVAL_REQUESTED, 1, 101.0, name="legal", subject=None, assignees=[])
        .add(K.SIGNAL_WAITING, 2, 101.0, name="go", deadline=111.0)
        .add(K.TIMER_SET, 3, 101.0, name="sleep", due=200.0)
    )
    rows = build_timeline(ledger.events, now=106.0).calls
    assert [r.status for r in rows] == ["waiting", "waiting", "waiting"]
    assert [r.duration for r in rows] == [5.0, 5.0, 5.0]
    ledger.add(K.APPROVAL_DECIDED, 1, 107.0, name="legal", approved=False, by="bo", comment="no")
    ledger.add(K.WAIT_TIMED_OUT, 2, 111.0, call="signal", name="go")
    rejected, timed_out, _ = build_timeline(ledger.events).calls
    assert rejected.status is RowStatus.REJECTED
    assert rejected.error is not None
    assert rejected.error.message == "rejected by bo: no"
    assert timed_out.status is RowStatus.TIMED_OUT
    assert timed_out.error is not None
    assert timed_out.error.type == "WaitTimeout"


def test_saga_marks_compensated_steps_and_adds_run_rows() -> None:
    failure = {"type": "StepFailed", "message": "ship"}
    ledger = (
        Ledger()
        .add(K.STEP_STARTED, 1, 101.0, name="reserve", attempt=1)
        .add(K.STEP_COMPLETED, 1, 102.0, name="reserve", attempt=1, result=1, compensate=True)
        .add(K.STEP_STARTED, 2, 102.0, name="charge", attempt=1)
        .add(K.STEP_COMPLETED, 2, 103.0, name="charge", attempt=1, result=2, compensate=True)
        .add(K.CANCEL_REQUESTED, None, 104.0)
        .add(K.COMPENSATION_STARTED, None, 104.5, status="cancelled", error=failure)
        .add(K.COMPENSATION_RAN, 2, 105.0, name="charge", ok=True, attempts=1, error=None)
        .add(
            K.COMPENSATION_RAN,
            1,
            107.0,
            name="reserve",
            ok=False,
            attempts=3,
            error={"type": "IOError", "message": "db down"},
        )
        .add(K.RUN_FINISHED, None, 107.5, status="cancelled", error=failure)
    )
    timeline = build_timeline(ledger.events)
    reserve, charge = timeline.calls
    assert charge.status is RowStatus.COMPENSATED
    assert charge.info["compensated_at"] == 105.0
    assert reserve.status is RowStatus.COMPLETED  # its undo failed: it still stands
    cancel, undo_charge, undo_reserve = timeline.run_rows
    assert (cancel.kind, cancel.status, cancel.started_at) == (
        RowKind.CANCELLATION,
        "requested",
        104.0,
    )
    assert (undo_charge.kind, undo_charge.seq, undo_charge.status) == (
        RowKind.COMPENSATION,
        2,
        RowStatus.COMPENSATED,
    )
    assert (undo_charge.started_at, undo_charge.duration) == (104.5, 0.5)
    assert (undo_reserve.status, undo_reserve.attempts) == (RowStatus.FAILED, 3)
    assert undo_reserve.error is not None
    assert str(undo_reserve.error) == "IOError: db down"
    assert undo_reserve.duration == 2.0
    assert timeline.rows == timeline.calls + timeline.run_rows


def test_open_calls_of_a_finished_run_are_closed() -> None:
    ledger = (
        Ledger()
        .add(K.SIGNAL_WAITING, 1, 101.0, name="go")
        .add(K.RUN_FINISHED, None, 102.0, status="cancelled")
    )
    [row] = build_timeline(ledger.events, now=999.0).calls
    assert row.status is RowStatus.CANCELLED
    assert row.duration is None
    ledger.events[-1] = Event(2, K.RUN_FINISHED, 102.0, None, {"status": "failed"})
    [row] = build_timeline(ledger.events).calls
    assert row.status is RowStatus.ABANDONED


def test_to_dict_is_json_and_span_covers_rows() -> None:
    ledger = Ledger()
    ledger.events[0] = Event(0, K.RUN_STARTED, 50.0, None, {"forked_from": "src", "from_step": 2})
    ledger.add(K.STEP_STARTED, 1, 40.0, name="old", attempt=1)  # kept from the source run
    ledger.add(K.STEP_COMPLETED, 1, 41.0, name="old", attempt=1, result=None)
    ledger.add(K.STEP_STARTED, 2, 60.0, name="new", attempt=1)
    timeline = build_timeline(ledger.events, now=65.0)
    assert (timeline.forked_from, timeline.from_step) == ("src", 2)
    assert timeline.span == (40.0, 60.0)
    data = json.loads(json.dumps(timeline.to_dict()))
    assert [s["name"] for s in data["steps"]] == ["old", "new"]
    assert data["steps"][1] == {
        "seq": 2,
        "kind": "step",
        "name": "new",
        "status": "running",
        "attempts": 1,
        "started_at": 60.0,
        "ended_at": None,
        "duration": 5.0,
        "error": None,
        "info": {},
    }
    assert build_timeline([]).span is None


# -- against a real ledger --------------------------------------------------------------------
FLAKY_CALLS: list[int] = []


@step(retry=RetryPolicy(max_attempts=3, initial_delay=5.0, jitter=0.0))
async def timeline_flaky(n: int) -> int:
    FLAKY_CALLS.append(n)
    if len(FLAKY_CALLS) < 2:
        raise ConnectionError("try again")
    return n * 2


@workflow
async def timeline_flow(n: int) -> int:
    return await timeline_flaky(n)


def test_timeline_of_a_real_run_with_a_retry(client: Client, clock: FakeClock) -> None:
    FLAKY_CALLS.clear()  # the test runs once per backend
    handle = client.start(timeline_flow, 4)
    run_until_idle(client)
    assert handle.result() == 8
    timeline = build_timeline(handle.events(), now=clock.now())
    [row] = timeline.calls
    assert (row.name, row.status, row.attempts) == ("timeline_flaky", RowStatus.COMPLETED, 2)
    assert row.duration == pytest.approx(5.0)  # the fake clock jumped the backoff
    assert timeline.status == "completed"
