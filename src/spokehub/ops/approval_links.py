"""Signed approval links as use cases: issue one, open it (the confirm page), decide with it.

Shared by the HTTP API, the dashboard's confirm page and ``spokehub approvals link``. The
signature and expiry are checked first (403 / 410, nothing changes); the vote then goes
through the same store transaction as any other, which also uses the link up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spokehub.engine.approvals import Actor, ApprovalRules, approval_state, matches
from spokehub.engine.events import CallKind, Event
from spokehub.engine.history import CallRecord, History
from spokehub.errors import ApprovalClosed, ApprovalForbidden, ApprovalLinkGone, InvalidRunState
from spokehub.governance.links import DEFAULT_TTL, ApprovalLink, sign_link, verify_link
from spokehub.ops.runs import Decided
from spokehub.runtime.client import Client
from spokehub.store.base import Tx
from spokehub.types import JSON

__all__ = ["LinkIssued", "LinkView", "create_link", "decide_with_link", "open_link"]

LINK_PATH = "/ui/approval-links/"


@dataclass(frozen=True, slots=True)
class LinkIssued:
    token: str
    run_id: str
    name: str
    by: str
    expires_at: float

    @property
    def path(self) -> str:
        return LINK_PATH + self.token

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "path": self.path,
            "run_id": self.run_id,
            "name": self.name,
            "by": self.by,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class LinkView:
    """What the confirm page shows before anyone decides."""

    link: ApprovalLink
    workflow: str
    subject: JSON
    assignees: tuple[str, ...]


def _open_approvals(events: list[Event]) -> list[CallRecord]:
    return [
        r
        for r in History(events).calls.values()
        if r.kind is CallKind.APPROVAL and r.resolution is None
    ]


async def create_link(
    client: Client,
    secret: bytes,
    run_id: str,
    *,
    by: str,
    name: str | None = None,
    role: str | None = None,
    ttl: float = DEFAULT_TTL,
) -> LinkIssued:
    """A link for ``by`` to decide the run's open approval (``name`` when it has several)."""
    waiting = _open_approvals(await client.events_async(run_id))
    if name is not None:
        waiting = [r for r in waiting if r.name == name]
    if len(waiting) != 1:
        what = f"approval {name!r}" if name else "exactly one approval"
        pending = sorted(r.name for r in _open_approvals(await client.events_async(run_id)))
        raise InvalidRunState(
            f"run {run_id!r} does not wait for {what} (open: {pending or 'none'}); name it "
            "with --name"
        )
    record = waiting[0]
    rules = ApprovalRules.from_data(record.events[0].data)
    assignees = approval_state(rules, record.events).assignees
    if assignees and not any(matches(a, Actor(by, role)) for a in assignees):
        raise ApprovalForbidden(
            f"{by!r} is not an assignee of approval {rules.name!r} (assignees: "
            f"{', '.join(assignees)}); a link only helps someone who may decide"
        )
    now = client.clock.now()
    token = sign_link(
        secret, run_id=run_id, seq=record.seq, name=rules.name, by=by, role=role, now=now, ttl=ttl
    )
    return LinkIssued(token, run_id, rules.name, by, now + ttl)


def _used(link_id: str) -> Any:
    def read(tx: Tx) -> bool:
        row = tx.execute("SELECT 1 FROM approval_links_used WHERE id = ?", (link_id,)).fetchone()
        return row is not None

    return read


async def open_link(client: Client, secret: bytes, token: str) -> LinkView:
    """Verify a link for the confirm page; used, expired or closed links are refused."""
    link = verify_link(secret, token, now=client.clock.now())
    await client.ensure_schema()
    if await client.store.transact(_used(link.id), write=False):
        raise ApprovalLinkGone(
            "this approval link was used already; a link works once. Ask for a new link, or "
            "decide in the approvals inbox"
        )
    run = await client.get_run_async(link.run_id)
    record = History(await client.events_async(link.run_id)).calls.get(link.seq)
    if record is None or record.kind is not CallKind.APPROVAL:
        raise InvalidRunState(f"run {link.run_id!r} has no approval call #{link.seq}")
    queued = {i.name for i in await client.store.inbox(link.run_id) if i.kind == "approval"}
    if record.resolution is not None or run.status.finished or link.name in queued:
        raise ApprovalClosed(
            f"approval {link.name!r} of run {link.run_id!r} is closed already; nothing to decide"
        )
    rules = ApprovalRules.from_data(record.events[0].data)
    state = approval_state(rules, record.events)
    subject = record.events[0].data.get("subject")
    return LinkView(link, run.workflow, subject, tuple(state.assignees))


async def decide_with_link(
    client: Client, secret: bytes, token: str, *, approved: bool, comment: str | None = None
) -> Decided:
    """Vote as the link's person; the link is used up in the same transaction."""
    link = verify_link(secret, token, now=client.clock.now())
    result = await client.vote_async(
        link.run_id,
        approved=approved,
        comment=comment,
        by=link.by,
        role=link.role,
        via="link",
        link_id=link.id,
        seq=link.seq,
    )
    return Decided(
        link.run_id, result.name, approved, result.outcome, result.approvals, result.quorum
    )
