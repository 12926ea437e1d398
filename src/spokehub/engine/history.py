"""Reading a run's history: which calls were made, what resolved them, and in what order.

Replay runs the workflow function again from the top. Each durable call it makes is numbered
in call order (``seq``) and checked against the history; the recorded resolutions (step
results, fired timers, received signals, ...) are fed back in the exact order of the ledger,
which is the order the live run saw them. That makes ``asyncio.gather`` fan-out replay to the
same numbering even though the branches finished in a racy order the first time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from spokehub.engine.events import RESOLUTIONS, CallKind, Event, EventKind
from spokehub.errors import NonDeterminismError


@dataclass(slots=True)
class CallRecord:
    """What the history holds about one numbered call."""

    seq: int
    kind: CallKind
    name: str
    events: list[Event] = field(default_factory=list)

    @property
    def resolution(self) -> Event | None:
        for event in self.events:
            if event.kind in RESOLUTIONS:
                return event
        return None

    @property
    def attempts_made(self) -> int:
        """Attempts that started, including one cut short by a crash."""
        started = sum(1 for e in self.events if e.kind is EventKind.STEP_STARTED)
        failed = sum(1 for e in self.events if e.kind is EventKind.RETRY_SCHEDULED)
        return max(started, failed)

    def last(self, kind: EventKind) -> Event | None:
        for event in reversed(self.events):
            if event.kind is kind:
                return event
        return None


@dataclass(slots=True)
class History:
    """An indexed run history."""

    events: list[Event]
    calls: dict[int, CallRecord] = field(default_factory=dict)
    resolutions: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        for event in self.events:
            call = event.call()
            if call is not None and event.seq is not None:
                record = self.calls.get(event.seq)
                if record is None:
                    record = self.calls[event.seq] = CallRecord(event.seq, call[0], call[1])
                record.events.append(event)
            if event.kind in RESOLUTIONS:
                self.resolutions.append(event)

    @property
    def next_position(self) -> int:
        return self.events[-1].position + 1 if self.events else 0

    def first(self, kind: EventKind) -> Event | None:
        return next((e for e in self.events if e.kind is kind), None)

    def compensated(self) -> set[int]:
        return {e.seq for e in self.events if e.kind is EventKind.COMPENSATION_RAN and e.seq}

    def compensable_steps(self) -> list[Event]:
        """Completed steps with a compensation, newest first: the order a saga undoes them."""
        done = [
            e
            for e in self.events
            if e.kind is EventKind.STEP_COMPLETED and e.data.get("compensate")
        ]
        return list(reversed(done))


class Replay:
    """Checks the calls of a replaying workflow against its history.

    Args:
        history: the run's recorded history.
        describe: a short text naming the workflow and versions, used in error messages.
    """

    def __init__(self, history: History, describe: str) -> None:
        self.history = history
        self.describe = describe
        self.pending: deque[Event] = deque(history.resolutions)

    def check(self, seq: int, kind: CallKind, name: str) -> CallRecord | None:
        """Return the record of call ``seq``, or None for a new call; raise on a mismatch."""
        record = self.history.calls.get(seq)
        if record is None:
            return None
        if record.kind is not kind or record.name != name:
            raise NonDeterminismError(
                f"{self.describe}: replay diverged at call #{seq}: the history has "
                f"{record.kind.value} {record.name!r} there, but the code now calls "
                f"{kind.value} {name!r}. The workflow code changed incompatibly; finish old "
                f"runs with the old code, or start over from before the change with "
                f"`spokehub fork RUN_ID --from-step {seq}`"
            )
        return record

    def stuck(self, called: set[int]) -> NonDeterminismError:
        """The error for a workflow that blocked without making the call history resolves next."""
        event = self.pending[0]
        call = event.call()
        what = f"{call[0].value} {call[1]!r}" if call else event.kind.value
        return NonDeterminismError(
            f"{self.describe}: replay diverged at call #{event.seq}: the history resolves "
            f"{what} next, but the code now waits without having made call #{event.seq} "
            f"(it made {len(called)} call(s)). The workflow code changed incompatibly; "
            f"finish old runs with the old code, or fork the run from an earlier step"
        )


_RUN_LEVEL = {
    EventKind.RUN_FINISHED,
    EventKind.COMPENSATION_STARTED,
    EventKind.COMPENSATION_RAN,
    EventKind.CANCEL_REQUESTED,
}


def fork_events(events: Sequence[Event], from_step: int, source_id: str, now: float) -> list[Event]:
    """The ledger of a fork: the source's events of calls before ``from_step``, renumbered."""
    kept: list[Event] = [
        Event(
            0, EventKind.RUN_STARTED, now, data={"forked_from": source_id, "from_step": from_step}
        )
    ]
    for e in events:
        if e.kind is EventKind.RUN_STARTED or e.kind in _RUN_LEVEL:
            continue
        if e.seq is not None and e.seq >= from_step:
            continue
        kept.append(Event(len(kept), e.kind, e.at, e.seq, e.data, e.v))
    return kept
