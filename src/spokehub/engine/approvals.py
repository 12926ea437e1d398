"""The rules of an approval's lifecycle, as pure functions of its ledger and its votes.

An approval is requested by workflow code (``approval(...)``), collects votes from people
(each checked against the assignees, the run's starter and the votes already cast), and
closes exactly once: approved when ``quorum`` distinct assignees approved, rejected when
``rejections`` distinct assignees rejected, or at its deadline with the configured outcome.
While it waits, reminders and an escalation fall due at times computed here; the runtime sets
durable timers for them and records each as a ledger event, so a restart loses none.

Assignees are user names (an API token's name, an OS user on the CLI) or ``role:NAME`` (any
caller whose token has that role).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from spokehub.engine.events import Event, EventKind

__all__ = [
    "ON_TIMEOUT",
    "Actor",
    "ApprovalRules",
    "ApprovalState",
    "Tick",
    "TimerAction",
    "Verdict",
    "Vote",
    "approval_due",
    "approval_state",
    "approval_tick",
    "check_voter",
    "matches",
    "next_timer",
    "tally",
]

ON_TIMEOUT = ("reject", "approve", "escalate")
ROLE_PREFIX = "role:"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who decides: a user name and, for API callers, the role of their token."""

    name: str
    role: str | None = None


def matches(entry: str, actor: Actor) -> bool:
    """Whether assignee ``entry`` (a user name or ``role:NAME``) names ``actor``."""
    if entry.startswith(ROLE_PREFIX):
        return actor.role is not None and actor.role == entry[len(ROLE_PREFIX) :]
    return entry == actor.name


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRules:
    """What ``approval(...)`` asked for; stored in its ``approval_requested`` event."""

    name: str
    assignees: tuple[str, ...] = ()
    quorum: int = 1
    rejections: int = 1
    allow_self: bool = True
    timeout: float | None = None
    on_timeout: str | None = None  # None: the wait raises WaitTimeout (the original form)
    remind_every: float | None = None
    escalate_after: float | None = None
    escalate_to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise ValueError(f"approval {self.name!r}: {problem}")

    def problem(self) -> str | None:
        """What is wrong with these options, or None."""
        if any(not isinstance(a, str) or not a.strip() for a in self.assignees):
            return "every assignee is a non-empty string (a user name or 'role:NAME')"
        if self.quorum < 1:
            return f"quorum counts approvers and must be at least 1, got {self.quorum}"
        if self.rejections < 1:
            return f"rejections must be at least 1, got {self.rejections}"
        users = [a for a in self.assignees if not a.startswith(ROLE_PREFIX)]
        only_users = len(users) == len(self.assignees)
        if self.assignees and only_users and self.quorum > len(set(users)):
            return (
                f"quorum {self.quorum} is more than the {len(set(users))} distinct assignees; "
                "lower the quorum or add assignees"
            )
        if self.on_timeout is not None and self.on_timeout not in ON_TIMEOUT:
            return f"on_timeout must be one of {', '.join(ON_TIMEOUT)}, got {self.on_timeout!r}"
        if self.on_timeout is not None and self.timeout is None:
            return "on_timeout needs a timeout (seconds) to apply at"
        if (self.on_timeout == "escalate" or self.escalate_after is not None) and not (
            self.escalate_to
        ):
            return "escalation needs escalate_to=[users or 'role:NAME']"
        for what in ("timeout", "remind_every", "escalate_after"):
            value = getattr(self, what)
            if value is not None and value <= 0:
                return f"{what} must be a number of seconds > 0, got {value!r}"
        return None

    @property
    def open_to_all(self) -> bool:
        """No assignees: anyone allowed to approve may decide (the original form)."""
        return not self.assignees

    def to_data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "assignees": list(self.assignees),
            "quorum": self.quorum,
            "rejections": self.rejections,
            "allow_self": self.allow_self,
            "timeout": self.timeout,
            "on_timeout": self.on_timeout,
            "remind_every": self.remind_every,
            "escalate_after": self.escalate_after,
            "escalate_to": list(self.escalate_to),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ApprovalRules:
        """From an ``approval_requested`` payload (version 2; older ones are upgraded first)."""
        return cls(
            name=str(data["name"]),
            assignees=tuple(str(a) for a in data.get("assignees") or ()),
            quorum=int(data.get("quorum", 1)),
            rejections=int(data.get("rejections", 1)),
            allow_self=bool(data.get("allow_self", True)),
            timeout=data.get("timeout"),
            on_timeout=data.get("on_timeout"),
            remind_every=data.get("remind_every"),
            escalate_after=data.get("escalate_after"),
            escalate_to=tuple(str(a) for a in data.get("escalate_to") or ()),
        )


@dataclass(frozen=True, slots=True)
class Vote:
    by: str
    approved: bool
    role: str | None = None
    comment: str | None = None
    at: float = 0.0
    via: str = "api"

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "approved": self.approved,
            "role": self.role,
            "comment": self.comment,
            "at": self.at,
            "via": self.via,
        }


class Verdict(StrEnum):
    OPEN = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


def tally(rules: ApprovalRules, votes: Sequence[Vote]) -> Verdict:
    """Distinct approvers reach the quorum, or distinct rejecters reach ``rejections``."""
    rejecters = {v.by for v in votes if not v.approved}
    if len(rejecters) >= rules.rejections:
        return Verdict.REJECTED
    approvers = {v.by for v in votes if v.approved}
    if len(approvers) >= rules.quorum:
        return Verdict.APPROVED
    return Verdict.OPEN


def check_voter(
    rules: ApprovalRules,
    assignees: Sequence[str],
    actor: Actor,
    started_by: str | None,
    votes: Sequence[Vote],
) -> tuple[str, str] | None:
    """Why ``actor`` may not vote now, as ``(kind, message)``, or None when the vote counts.

    ``kind`` is ``"forbidden"`` (not theirs to decide: 403) or ``"conflict"`` (already voted:
    409).
    """
    if assignees and not any(matches(a, actor) for a in assignees):
        return (
            "forbidden",
            f"{actor.name!r} is not an assignee of approval {rules.name!r} "
            f"(assignees: {', '.join(assignees)}); ask one of them to decide",
        )
    if not rules.allow_self and started_by is not None and actor.name == started_by:
        return (
            "forbidden",
            f"{actor.name!r} started this run and approval {rules.name!r} does not "
            "allow self-approval (allow_self=False); another assignee must decide",
        )
    if any(v.by == actor.name for v in votes):
        return (
            "conflict",
            f"{actor.name!r} already voted on approval {rules.name!r}; the quorum "
            "counts distinct approvers, so another assignee must decide",
        )
    return None


class TimerAction(StrEnum):
    REMIND = "remind"
    ESCALATE = "escalate"
    EXPIRE = "expire"


@dataclass(slots=True)
class ApprovalState:
    """Where an open approval's timers stand, from its ledger events."""

    requested_at: float
    deadline: float | None
    reminders: int = 0
    escalated: bool = False
    escalated_on_timeout: bool = False
    assignees: list[str] = field(default_factory=list)


def approval_state(rules: ApprovalRules, events: Sequence[Event]) -> ApprovalState:
    """Fold an approval's events (request, reminders, escalations) into its state."""
    first = events[0]
    state = ApprovalState(first.at, first.data.get("deadline"), assignees=list(rules.assignees))
    for e in events[1:]:
        if e.kind is EventKind.APPROVAL_REMINDED:
            # ``n`` counts periods, not events: missed reminders went out as one.
            state.reminders = int(e.data.get("n", state.reminders + 1))
        elif e.kind is EventKind.APPROVAL_ESCALATED:
            state.escalated = True
            state.escalated_on_timeout |= e.data.get("reason") == "timeout"
            state.deadline = e.data.get("deadline", state.deadline)
            state.assignees += [a for a in e.data.get("to", ()) if a not in state.assignees]
    return state


def next_timer(rules: ApprovalRules, state: ApprovalState) -> tuple[float, TimerAction] | None:
    """The next thing due for an open approval: a reminder, the escalation, or expiry."""
    due: list[tuple[float, TimerAction]] = []
    if state.deadline is not None:
        due.append((state.deadline, TimerAction.EXPIRE))
    if rules.escalate_after is not None and not state.escalated:
        due.append((state.requested_at + rules.escalate_after, TimerAction.ESCALATE))
    if rules.remind_every is not None:
        at = state.requested_at + rules.remind_every * (state.reminders + 1)
        if state.deadline is None or at < state.deadline:
            due.append((at, TimerAction.REMIND))
    # Ties: expiry first (nothing after it matters), then escalation, then the reminder.
    order = {TimerAction.EXPIRE: 0, TimerAction.ESCALATE: 1, TimerAction.REMIND: 2}
    return min(due, key=lambda d: (d[0], order[d[1]])) if due else None


@dataclass(slots=True)
class Tick:
    """What an approval's timers do at ``now``: events to record, and what follows."""

    events: list[tuple[EventKind, dict[str, Any]]] = field(default_factory=list)
    resolves: bool = False  # the last event ends the wait
    due: float | None = None  # otherwise: when to look again


def approval_due(events: Sequence[Event]) -> float | None:
    """When an open approval's next timer falls due (its events start with the request)."""
    rules = ApprovalRules.from_data(events[0].data)
    nxt = next_timer(rules, approval_state(rules, events))
    return nxt[0] if nxt is not None else None


def approval_tick(events: Sequence[Event], now: float) -> Tick:
    """Apply every timer of an open approval that is due at ``now``.

    Reminders missed while no worker ran (a long outage) go out once, not once per period.
    """
    rules = ApprovalRules.from_data(events[0].data)
    state = approval_state(rules, events)
    tick = Tick()
    while (nxt := next_timer(rules, state)) is not None and nxt[0] <= now:
        action = nxt[1]
        if action is TimerAction.REMIND:
            assert rules.remind_every is not None
            state.reminders = int((now - state.requested_at) // rules.remind_every)
            tick.events.append(
                (
                    EventKind.APPROVAL_REMINDED,
                    {"name": rules.name, "n": state.reminders, "assignees": list(state.assignees)},
                )
            )
        elif action is TimerAction.ESCALATE:
            _escalate(rules, state, tick, "escalate_after")
        elif rules.on_timeout == "escalate" and not state.escalated_on_timeout:
            assert state.deadline is not None
            assert rules.timeout is not None
            state.deadline += rules.timeout
            state.escalated_on_timeout = True
            _escalate(rules, state, tick, "timeout")
        else:
            tick.events.append(_expiry(rules))
            tick.resolves = True
            return tick
    tick.due = nxt[0] if nxt is not None else None
    return tick


def _escalate(rules: ApprovalRules, state: ApprovalState, tick: Tick, reason: str) -> None:
    state.escalated = True
    state.assignees += [a for a in rules.escalate_to if a not in state.assignees]
    data = {
        "name": rules.name,
        "to": list(rules.escalate_to),
        "reason": reason,
        "deadline": state.deadline,
    }
    tick.events.append((EventKind.APPROVAL_ESCALATED, data))


def _expiry(rules: ApprovalRules) -> tuple[EventKind, dict[str, Any]]:
    if rules.on_timeout is None:  # the original form: the wait raises WaitTimeout
        return EventKind.WAIT_TIMED_OUT, {"call": "approval", "name": rules.name}
    approved = rules.on_timeout == "approve"
    return EventKind.APPROVAL_DECIDED, {
        "name": rules.name,
        "approved": approved,
        "expired": True,
        "by": None,
        "comment": f"expired: nobody decided within {rules.timeout:g} s "
        f"(on_timeout={rules.on_timeout!r})",
        "votes": [],
    }
