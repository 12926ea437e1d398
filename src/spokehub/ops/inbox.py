"""The approvals inbox: every approval that waits for a human, across all runs.

One place for the dashboard and the CLI. It reads the ledgers of unfinished runs that ever
requested an approval, so what it shows is what the workflow waits for, with the facts the
request recorded (subject, assignees, deadline). A decision already sent but not yet taken in
by a worker is left out: the inbox lists what still needs someone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spokehub.engine.approvals import Actor, matches
from spokehub.engine.timeline import RowKind, build_timeline
from spokehub.ops.runs import external_waits
from spokehub.runtime.client import Client
from spokehub.store.base import Tx
from spokehub.types import JSON

__all__ = ["PendingApproval", "pending_approvals"]


@dataclass(frozen=True, slots=True)
class PendingApproval:
    run_id: str
    workflow: str
    name: str
    requested_at: float | None
    deadline: float | None
    assignees: tuple[str, ...]
    subject: JSON
    quorum: int = 1
    escalated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "name": self.name,
            "requested_at": self.requested_at,
            "deadline": self.deadline,
            "assignees": list(self.assignees),
            "subject": self.subject,
            "quorum": self.quorum,
            "escalated": self.escalated,
        }


def _candidates(tx: Tx, limit: int) -> list[tuple[str, str]]:
    rows = tx.execute(
        "SELECT r.id, r.workflow FROM runs r WHERE r.finished_at IS NULL AND EXISTS ("
        "SELECT 1 FROM events e WHERE e.run_id = r.id AND e.kind = 'approval_requested') "
        "ORDER BY r.created_at LIMIT ?",
        (limit,),
    )
    return [(str(r[0]), str(r[1])) for r in rows.fetchall()]


async def pending_approvals(
    client: Client,
    *,
    assignee: str | None = None,
    role: str | None = None,
    limit: int = 500,
) -> list[PendingApproval]:
    """Approvals waiting for a decision, oldest request first.

    Args:
        assignee: only those this user may decide: assigned by name, by ``role:ROLE``, or
            assigned to nobody in particular (escalations included).
        role: the user's role (a token's role), matched against ``role:NAME`` assignees.
        limit: how many unfinished runs with approvals to look at.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    await client.ensure_schema()
    runs = await client.store.transact(lambda tx: _candidates(tx, limit), write=False)
    found: list[PendingApproval] = []
    for run_id, workflow in runs:
        # The inbox before the ledger: a worker takes a decision in and records it in one
        # commit, so a decision missing from the first read is in the second.
        queued = {i.name for i in await client.store.inbox(run_id) if i.kind == "approval"}
        events = await client.store.events(run_id)
        for row in external_waits(build_timeline(events)):
            if row.kind is not RowKind.APPROVAL or row.name in queued:
                continue
            assignees = tuple(str(a) for a in row.info.get("assignees") or ())
            me = Actor(assignee, role) if assignee is not None else None
            if me is not None and assignees and not any(matches(a, me) for a in assignees):
                continue
            deadline = row.info.get("deadline")
            found.append(
                PendingApproval(
                    run_id=run_id,
                    workflow=workflow,
                    name=row.name,
                    requested_at=row.started_at,
                    deadline=float(deadline) if deadline is not None else None,
                    assignees=assignees,
                    subject=row.info.get("subject"),
                    quorum=int(row.info.get("quorum", 1)),
                    escalated=bool(row.info.get("escalated")),
                )
            )
    found.sort(key=lambda p: (p.requested_at or 0.0, p.run_id, p.name))
    return found
