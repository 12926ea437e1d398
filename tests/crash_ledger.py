"""Well-formedness of a run's ledger, shared by the crash tests and the replay properties.

``check_ledger`` raises AssertionError with the offending events when a history breaks one of
the rules a replay relies on:

* positions are contiguous from 0; position 0 is ``run_started``; ``run_finished`` (at most
  one) is the last event;
* call numbers (seq) are contiguous from 1, and every event of a seq belongs to one call
  (one kind, one name);
* per step: attempts start in increasing order; ``retry_scheduled`` follows the start of the
  attempt it names and the next start is the next attempt; at most one resolution
  (``step_completed`` or ``step_failed``), which names the last started attempt and is the
  seq's last event;
* per timer: one ``timer_set``, then at most one ``timer_fired``, not before its due time;
* per signal or approval wait: the waiting event first, then at most one resolution, and no
  inbox item is delivered twice in the run;
* a saga: ``compensation_started`` at most once, each ``compensation_ran`` after it, at most
  once per completed compensable step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from spokehub import Event, EventKind
from spokehub.engine.events import RESOLUTIONS, CallKind


def _fail(what: str, events: Sequence[Event]) -> AssertionError:
    lines = "\n".join(f"  {e.position} {e.kind.value} seq={e.seq} {e.data}" for e in events)
    return AssertionError(f"{what}\n{lines}")


def check_ledger(events: Sequence[Event]) -> None:
    """Raise AssertionError if ``events`` (one run's ledger, in order) is not well-formed."""
    if [e.position for e in events] != list(range(len(events))):
        raise _fail("positions are not contiguous from 0", events)
    if not events or events[0].kind is not EventKind.RUN_STARTED:
        raise _fail("the ledger does not open with run_started", events)
    finished = [e for e in events if e.kind is EventKind.RUN_FINISHED]
    if len(finished) > 1 or (finished and finished[0] is not events[-1]):
        raise _fail("run_finished is not unique and last", events)

    by_seq: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        if e.seq is not None and e.kind is not EventKind.COMPENSATION_RAN:
            by_seq[e.seq].append(e)
    if sorted(by_seq) != list(range(1, len(by_seq) + 1)):
        raise _fail(f"call numbers are not contiguous from 1: {sorted(by_seq)}", events)
    _check_calls(by_seq, events)
    _check_saga(events)


def _check_calls(by_seq: dict[int, list[Event]], events: Sequence[Event]) -> None:
    inbox_ids: list[int] = []
    for seq, evs in by_seq.items():
        calls = {e.call() for e in evs}
        if len(calls) != 1 or None in calls:
            raise _fail(f"seq {seq} mixes calls {calls}", evs)
        (kind, _name) = next(iter(calls))  # type: ignore[misc]
        resolutions = [e for e in evs if e.kind in RESOLUTIONS]
        if len(resolutions) > 1 or (resolutions and resolutions[0] is not evs[-1]):
            raise _fail(f"seq {seq}: more than one resolution, or events after it", evs)
        if kind is CallKind.STEP:
            _check_step(seq, evs)
        elif kind is CallKind.TIMER:
            _check_timer(seq, evs)
        elif kind in (CallKind.SIGNAL, CallKind.APPROVAL):
            opening = (
                EventKind.SIGNAL_WAITING
                if kind is CallKind.SIGNAL
                else EventKind.APPROVAL_REQUESTED
            )
            if evs[0].kind is not opening or sum(e.kind is opening for e in evs) != 1:
                raise _fail(f"seq {seq}: a wait must open with one {opening.value}", evs)
            inbox_ids += [e.data["inbox_id"] for e in evs if "inbox_id" in e.data]
    if len(inbox_ids) != len(set(inbox_ids)):
        raise _fail(f"an inbox item was delivered twice: {sorted(inbox_ids)}", events)


def _check_step(seq: int, evs: list[Event]) -> None:
    last_started = 0
    retry_of: int | None = None
    for e in evs:
        if e.kind is EventKind.STEP_STARTED:
            attempt = e.data["attempt"]
            ok = attempt == retry_of + 1 if retry_of is not None else attempt > last_started
            if not ok:
                raise _fail(f"seq {seq}: attempt {attempt} starts out of order", evs)
            last_started, retry_of = attempt, None
        elif e.kind is EventKind.RETRY_SCHEDULED:
            if e.data["attempt"] != last_started or retry_of is not None:
                raise _fail(f"seq {seq}: retry_scheduled does not follow its attempt", evs)
            retry_of = last_started
        elif e.kind is EventKind.STEP_COMPLETED:
            if e.data["attempt"] != last_started or retry_of is not None:
                raise _fail(f"seq {seq}: step_completed is not the last started attempt", evs)
        elif e.kind is EventKind.STEP_FAILED:
            if e.data["attempts"] != last_started or retry_of is not None:
                raise _fail(f"seq {seq}: step_failed is not the last started attempt", evs)
        else:
            raise _fail(f"seq {seq}: unexpected {e.kind.value} in a step", evs)
    if evs[0].kind is not EventKind.STEP_STARTED:
        raise _fail(f"seq {seq}: a step must open with step_started", evs)


def _check_timer(seq: int, evs: list[Event]) -> None:
    kinds = [e.kind for e in evs]
    if kinds not in ([EventKind.TIMER_SET], [EventKind.TIMER_SET, EventKind.TIMER_FIRED]):
        raise _fail(f"seq {seq}: a timer is timer_set then at most one timer_fired", evs)
    if len(evs) == 2 and evs[1].at < evs[0].data["due"]:
        raise _fail(f"seq {seq}: the timer fired before it was due", evs)


def _check_saga(events: Sequence[Event]) -> None:
    started = [e for e in events if e.kind is EventKind.COMPENSATION_STARTED]
    ran = [e for e in events if e.kind is EventKind.COMPENSATION_RAN]
    if len(started) > 1 or (ran and not started):
        raise _fail("compensation_started missing or repeated", events)
    if ran and min(e.position for e in ran) < started[0].position:
        raise _fail("compensation_ran before compensation_started", events)
    compensable = {
        e.seq for e in events if e.kind is EventKind.STEP_COMPLETED and e.data.get("compensate")
    }
    seqs = [e.seq for e in ran]
    if len(seqs) != len(set(seqs)) or not set(seqs) <= compensable:
        raise _fail("a compensation ran twice, or for a step that had none", events)
