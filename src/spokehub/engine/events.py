"""The ledger's vocabulary: one append-only, versioned event history per run.

Anything persisted is an API: a kind's payload may grow new optional fields freely; a change
that old readers would misread gets a new version number and an upgrade function below, and
the old histories stay as replay fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    RUN_STARTED = "run_started"
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    RETRY_SCHEDULED = "retry_scheduled"
    TIMER_SET = "timer_set"
    TIMER_FIRED = "timer_fired"
    SIGNAL_WAITING = "signal_waiting"
    SIGNAL_RECEIVED = "signal_received"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_DECIDED = "approval_decided"
    APPROVAL_REMINDED = "approval_reminded"
    APPROVAL_ESCALATED = "approval_escalated"
    WAIT_TIMED_OUT = "wait_timed_out"
    CHILD_STARTED = "child_started"
    CHILD_FINISHED = "child_finished"
    CANCEL_REQUESTED = "cancel_requested"
    COMPENSATION_STARTED = "compensation_started"
    COMPENSATION_RAN = "compensation_ran"
    RUN_FINISHED = "run_finished"
    # Annotations: facts about a run that replay never feeds back (see runtime.annotations).
    POLICY_DECIDED = "policy_decided"


class CallKind(StrEnum):
    """What a numbered call in workflow code was."""

    STEP = "step"
    TIMER = "timer"
    SIGNAL = "signal"
    APPROVAL = "approval"
    CHILD = "child"


CURRENT_VERSION: dict[EventKind, int] = {kind: 1 for kind in EventKind}
# v2: ``before`` (the position of the first recorded result the code had not seen yet when
# the cancel was acknowledged); replay applies the cancel before delivering it. Old readers
# would apply it later and let the code make calls it never made live, hence the new version.
CURRENT_VERSION[EventKind.CANCEL_REQUESTED] = 2
# approval_requested v2 states the lifecycle (quorum, self-approval, timeout outcome, ...).
CURRENT_VERSION[EventKind.APPROVAL_REQUESTED] = 2

# Events that deliver something into the workflow; replay feeds them back in ledger order.
RESOLUTIONS = frozenset(
    {
        EventKind.STEP_COMPLETED,
        EventKind.STEP_FAILED,
        EventKind.TIMER_FIRED,
        EventKind.SIGNAL_RECEIVED,
        EventKind.APPROVAL_DECIDED,
        EventKind.WAIT_TIMED_OUT,
        EventKind.CHILD_FINISHED,
        EventKind.CANCEL_REQUESTED,
    }
)

_CALL_KIND = {
    EventKind.STEP_STARTED: CallKind.STEP,
    EventKind.STEP_COMPLETED: CallKind.STEP,
    EventKind.STEP_FAILED: CallKind.STEP,
    EventKind.RETRY_SCHEDULED: CallKind.STEP,
    EventKind.TIMER_SET: CallKind.TIMER,
    EventKind.TIMER_FIRED: CallKind.TIMER,
    EventKind.SIGNAL_WAITING: CallKind.SIGNAL,
    EventKind.SIGNAL_RECEIVED: CallKind.SIGNAL,
    EventKind.APPROVAL_REQUESTED: CallKind.APPROVAL,
    EventKind.APPROVAL_DECIDED: CallKind.APPROVAL,
    EventKind.APPROVAL_REMINDED: CallKind.APPROVAL,
    EventKind.APPROVAL_ESCALATED: CallKind.APPROVAL,
    EventKind.CHILD_STARTED: CallKind.CHILD,
    EventKind.CHILD_FINISHED: CallKind.CHILD,
}


@dataclass(frozen=True, slots=True)
class Event:
    """One ledger entry.

    ``position`` orders a run's events (0 is ``run_started``); ``seq`` is the number of the
    workflow call the event belongs to (1 for the first step, sleep, signal wait, ...), or
    None for run-level events; ``v`` is the payload version.
    """

    position: int
    kind: EventKind
    at: float
    seq: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    v: int = 1

    def call(self) -> tuple[CallKind, str] | None:
        """The (kind, name) of the workflow call this event records, if it records one."""
        if self.seq is None:
            return None
        if self.kind is EventKind.WAIT_TIMED_OUT:
            return CallKind(self.data["call"]), str(self.data.get("name", ""))
        kind = _CALL_KIND.get(self.kind)
        if kind is None:
            return None
        return kind, str(self.data.get("name", ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "kind": self.kind.value,
            "seq": self.seq,
            "at": self.at,
            "v": self.v,
            "data": self.data,
        }


Upgrader = Callable[[dict[str, Any]], dict[str, Any]]


def _approval_requested_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v1 recorded assignees but enforced nothing: one decision from anyone, self included."""
    return {
        "quorum": 1,
        "rejections": 1,
        "allow_self": True,
        "timeout": None,
        "on_timeout": None,
        "remind_every": None,
        "escalate_after": None,
        "escalate_to": [],
        **data,
    }


# (kind, from_version) -> function giving the payload at from_version + 1.
_UPGRADES: dict[tuple[EventKind, int], Upgrader] = {
    # A v1 cancellation took effect at its own place in the ledger: no ``before``.
    (EventKind.CANCEL_REQUESTED, 1): lambda data: data,
    (EventKind.APPROVAL_REQUESTED, 1): _approval_requested_v1,
}


def upgrade(kind: EventKind, v: int, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Bring a stored payload to the current version of its kind."""
    target = CURRENT_VERSION[kind]
    if v > target:
        raise ValueError(
            f"ledger event {kind.value} has payload version {v} but this spokehub reads up to "
            f"{target}; upgrade spokehub to read this database"
        )
    while v < target:
        data = _UPGRADES[(kind, v)](data)
        v += 1
    return v, data
