"""Workflows for the approvals tests (imported by the test and by worker processes)."""

from __future__ import annotations

from spokehub import ApprovalRejected, WaitTimeout, approval, workflow


@workflow
async def gov_one(doc: str) -> str:
    """Any one of three named approvers; the starter may not approve."""
    decision = await approval("ship", subject={"doc": doc}, assignees=["alice", "bob", "carol"])
    return f"approved by {decision.by}"


@workflow
async def gov_quorum(doc: str) -> str:
    decision = await approval(
        "ship", subject={"doc": doc}, assignees=["alice", "bob", "carol"], quorum=2
    )
    return "approved by " + ",".join(sorted(decision.approvers))


@workflow
async def gov_role(doc: str) -> str:
    decision = await approval("ship", assignees=["role:approver"], allow_self=True)
    return f"approved by {decision.by}"


@workflow
async def gov_self_ok(doc: str) -> str:
    decision = await approval("ship", assignees=["dave", "alice"], allow_self=True)
    return f"approved by {decision.by}"


@workflow
async def gov_timers(doc: str) -> str:
    """Reminders every hour, escalation to carol after 2 h, rejected after 5 h."""
    try:
        decision = await approval(
            "ship",
            assignees=["alice"],
            timeout=5 * 3600,
            on_timeout="reject",
            remind_every=3600,
            escalate_after=2 * 3600,
            escalate_to=["carol"],
        )
    except ApprovalRejected as exc:
        return f"rejected: {exc.comment}"
    return f"approved by {decision.by}"


@workflow
async def gov_expire(outcome: str) -> str:
    try:
        decision = await approval(
            "ship",
            assignees=["alice"],
            timeout=600,
            on_timeout=None if outcome == "error" else outcome,
            escalate_to=["carol"] if outcome == "escalate" else (),
        )
    except ApprovalRejected as exc:
        return f"rejected: {exc.comment}"
    except WaitTimeout:
        return "timed out"
    return f"approved (expired={decision.expired}) by {decision.by}"


@workflow
async def gov_bad(case: str) -> str:
    if case == "empty":
        await approval("ship", quorum=1)
    else:
        await approval("ship", assignees=["alice", "bob"], quorum=3)
    return "unreachable"
