"""The pure rules of approvals (engine/approvals.py), and old ledgers replaying."""

from __future__ import annotations

import asyncio

import pytest

from spokehub import Client, RunStatus, approval_sync, workflow
from spokehub.engine.approvals import (
    Actor,
    ApprovalRules,
    TimerAction,
    Verdict,
    Vote,
    approval_due,
    approval_state,
    approval_tick,
    check_voter,
    matches,
    next_timer,
    tally,
)
from spokehub.engine.events import CURRENT_VERSION, Event, EventKind, upgrade
from spokehub.engine.serde import input_hash
from spokehub.store.base import NewRun
from spokehub.testing import FakeClock, run_until_idle
from tests.governance.approvals_app import gov_one


def _requested(at: float = 0.0, deadline: float | None = None, **rules: object) -> Event:
    data = ApprovalRules(name="ship", **rules).to_data()  # type: ignore[arg-type]
    return Event(1, EventKind.APPROVAL_REQUESTED, at, 1, {**data, "deadline": deadline}, v=2)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"assignees": ("a",), "quorum": 2}, "more than the 1 distinct"),
        ({"assignees": ("a", "a"), "quorum": 2}, "more than the 1 distinct"),
        ({"quorum": 0}, "at least 1"),
        ({"rejections": 0}, "rejections must be at least 1"),
        ({"assignees": ("",)}, "non-empty string"),
        ({"on_timeout": "later", "timeout": 5}, "on_timeout must be one of"),
        ({"on_timeout": "reject"}, "needs a timeout"),
        ({"on_timeout": "escalate", "timeout": 5}, "escalate_to"),
        ({"escalate_after": 5}, "escalate_to"),
        ({"remind_every": 0}, "remind_every must be"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        ApprovalRules(name="ship", **options)  # type: ignore[arg-type]


def test_a_role_makes_the_quorum_uncheckable_so_it_is_allowed() -> None:
    assert ApprovalRules(name="ship", assignees=("role:approver",), quorum=3).quorum == 3


def test_matching_and_voting() -> None:
    assert matches("role:approver", Actor("x", "approver"))
    assert not matches("role:approver", Actor("x", None))
    assert matches("ann", Actor("ann"))
    rules = ApprovalRules(name="ship", assignees=("ann", "bo"), allow_self=False)
    assert check_voter(rules, rules.assignees, Actor("cy"), None, [])[0] == "forbidden"  # type: ignore[index]
    assert check_voter(rules, rules.assignees, Actor("ann"), "ann", [])[0] == "forbidden"  # type: ignore[index]
    votes = [Vote("ann", True)]
    assert check_voter(rules, rules.assignees, Actor("ann"), None, votes)[0] == "conflict"  # type: ignore[index]
    assert check_voter(rules, rules.assignees, Actor("bo"), "ann", votes) is None


def test_tally_counts_distinct_people() -> None:
    rules = ApprovalRules(name="ship", assignees=("a", "b", "c"), quorum=2, rejections=2)
    assert tally(rules, [Vote("a", True), Vote("a", True)]) is Verdict.OPEN
    assert tally(rules, [Vote("a", True), Vote("b", True)]) is Verdict.APPROVED
    assert tally(rules, [Vote("a", False)]) is Verdict.OPEN
    assert tally(rules, [Vote("a", False), Vote("c", False)]) is Verdict.REJECTED


def test_timers_in_order_and_missed_reminders_go_out_once() -> None:
    first = _requested(
        at=0.0,
        deadline=100.0,
        assignees=("a",),
        timeout=100.0,
        on_timeout="reject",
        remind_every=10.0,
        escalate_after=25.0,
        escalate_to=("boss",),
    )
    rules = ApprovalRules.from_data(first.data)
    assert next_timer(rules, approval_state(rules, [first])) == (10.0, TimerAction.REMIND)
    assert approval_due([first]) == 10.0
    tick = approval_tick([first], now=35.0)  # a worker was down from 0 to 35
    kinds = [k for k, _ in tick.events]
    assert kinds == [EventKind.APPROVAL_REMINDED, EventKind.APPROVAL_ESCALATED]
    assert tick.events[0][1]["n"] == 3
    assert tick.due == 40.0
    later = [first] + [Event(2 + i, k, 35.0, 1, d) for i, (k, d) in enumerate(tick.events)]
    state = approval_state(rules, later)
    assert (state.reminders, state.escalated, state.assignees) == (3, True, ["a", "boss"])
    end = approval_tick(later, now=100.0)
    assert end.resolves
    assert end.events[-1][0] is EventKind.APPROVAL_DECIDED
    assert end.events[-1][1]["approved"] is False


def test_an_approval_without_timers_has_nothing_due() -> None:
    assert approval_due([_requested()]) is None
    assert approval_tick([_requested()], now=1e12).events == []


def test_version_1_requests_upgrade_to_the_original_meaning() -> None:
    assert CURRENT_VERSION[EventKind.APPROVAL_REQUESTED] == 2
    v, data = upgrade(EventKind.APPROVAL_REQUESTED, 1, {"name": "ship", "assignees": ["a"]})
    assert v == 2
    rules = ApprovalRules.from_data(data)
    assert (rules.quorum, rules.allow_self, rules.on_timeout) == (1, True, None)
    assert rules.assignees == ("a",)


def test_an_old_ledger_waiting_on_a_v1_approval_replays_and_finishes(
    client: Client, clock: FakeClock
) -> None:
    """A run recorded before approvals had a lifecycle (payload v1) still completes."""
    old = [
        Event(
            0, EventKind.RUN_STARTED, clock.now(), None, {"workflow": "gov_one", "queue": "default"}
        ),
        Event(
            1,
            EventKind.APPROVAL_REQUESTED,
            clock.now(),
            1,
            {
                "name": "ship",
                "subject": {"doc": "x"},
                "assignees": ["alice", "bob", "carol"],
                "deadline": None,
            },
            v=1,
        ),
    ]
    data = {"doc": "x"}
    new = NewRun(
        id="old-v1",
        workflow="gov_one",
        version=gov_one.version,
        queue=gov_one.queue,
        input=data,
        input_hash=input_hash(data),
        events=old,
    )

    async def insert() -> None:
        await client.ensure_schema()
        await client.store.insert_run(new, clock.now())

    asyncio.run(insert())
    run_until_idle(client, advance_time=False)
    assert client.get_run("old-v1").status is RunStatus.WAITING
    assert client.vote("old-v1", approved=True, by="bob").outcome == "approved"
    run_until_idle(client, advance_time=False)
    assert client.handle("old-v1").result() == "approved by bob"


def test_the_os_user_is_the_default_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    from spokehub.runtime.client import os_user

    monkeypatch.setattr(getpass, "getuser", lambda: "ada")
    assert os_user() == "ada"

    def missing() -> str:
        raise KeyError("no passwd entry")

    monkeypatch.setattr(getpass, "getuser", missing)
    assert os_user() == "unknown-user"


def test_reminders_and_escalations_print_a_line() -> None:
    from spokehub.cli.progress import event_line

    reminded = Event(
        3, EventKind.APPROVAL_REMINDED, 0.0, 1, {"name": "ship", "n": 2, "assignees": ["a"]}
    )
    escalated = Event(4, EventKind.APPROVAL_ESCALATED, 0.0, 1, {"name": "ship", "to": ["boss"]})
    assert event_line(reminded) == ("yellow", "⏰ #1 approval 'ship' reminder 2 to a")
    assert event_line(escalated) == ("yellow", "⇧ #1 approval 'ship' escalated to boss")


@workflow
def gov_sync_review(doc: str) -> str:
    decision = approval_sync("ship", subject=doc, assignees=["ann", "bo"], quorum=2)
    return "+".join(sorted(decision.approvers))


@workflow
def gov_sync_bad(doc: str) -> str:
    approval_sync("ship", assignees="ann")  # type: ignore[arg-type]
    return doc


def test_sync_workflows_have_the_same_lifecycle(client: Client) -> None:
    handle = client.start(gov_sync_review, "x")
    run_until_idle(client, advance_time=False)
    assert client.vote(handle.id, approved=True, by="ann").outcome == "pending"
    assert client.vote(handle.id, approved=True, by="bo").outcome == "approved"
    run_until_idle(client, advance_time=False)
    assert handle.result() == "ann+bo"
    bad = client.start(gov_sync_bad, "x")
    run_until_idle(client, advance_time=False)
    run = client.get_run(bad.id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "lists of names" in run.error["message"]
