"""Votes on approvals, checked and counted inside the store's transaction.

A vote is accepted or refused in the same transaction that reads the approval's state, with
the run's row locked (PostgreSQL) or under SQLite's single writer, so concurrent decisions
make exactly one transition: the vote that reaches the quorum (or the rejection count)
queues the decision in the run's inbox; every later vote finds the approval closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spokehub.engine.approvals import (
    Actor,
    ApprovalRules,
    Verdict,
    Vote,
    approval_state,
    check_voter,
    tally,
)
from spokehub.engine.events import Event, EventKind
from spokehub.errors import (
    ApprovalClosed,
    ApprovalForbidden,
    ApprovalLinkGone,
    DuplicateVote,
    InvalidRunState,
)
from spokehub.store.base import ApprovalVote, VoteResult
from spokehub.store.crypto import PayloadCipher, open_text

__all__ = ["Counted", "count_vote", "use_link"]

Conn = Any


@dataclass(slots=True)
class _Approval:
    seq: int
    name: str
    events: list[Event]
    closed: str | None = None  # how it closed: approved, rejected, expired, timed out


@dataclass(frozen=True, slots=True)
class Counted:
    result: VoteResult
    decision: dict[str, Any] | None  # the inbox payload when this vote closed the approval


def _approvals(events: Sequence[Event]) -> list[_Approval]:
    found: dict[int, _Approval] = {}
    for e in events:
        if e.seq is None:
            continue
        if e.kind is EventKind.APPROVAL_REQUESTED:
            found[e.seq] = _Approval(e.seq, str(e.data["name"]), [e])
            continue
        a = found.get(e.seq)
        if a is None:
            continue
        a.events.append(e)
        if e.kind is EventKind.APPROVAL_DECIDED:
            approved = "approved" if e.data.get("approved") else "rejected"
            a.closed = f"expired and was {approved}" if e.data.get("expired") else approved
        elif e.kind is EventKind.WAIT_TIMED_OUT:
            a.closed = "timed out"
    return list(found.values())


def _pick(
    run_id: str, approvals: list[_Approval], vote: ApprovalVote, queued: set[str], now: float
) -> _Approval:
    """The approval a vote is for; refuse a closed one with a message saying how it closed."""
    for a in approvals:
        if a.closed is None and a.name in queued:
            a.closed = "decided (the workflow takes the decision in shortly)"
        if a.closed is None:
            deadline = approval_state(ApprovalRules.from_data(a.events[0].data), a.events).deadline
            if deadline is not None and deadline < now:
                a.closed = "expired"
    if vote.run_seq is not None:
        chosen = [a for a in approvals if a.seq == vote.run_seq]
    elif vote.name is not None:
        chosen = [a for a in approvals if a.name == vote.name][-1:]
    else:
        chosen = [a for a in approvals if a.closed is None]
        if len(chosen) > 1:
            names = sorted(a.name for a in chosen)
            raise InvalidRunState(
                f"run {run_id!r} waits for several approvals {names}; name the one you decide "
                "with --name"
            )
        chosen = chosen or approvals[-1:]
    if not chosen:
        if vote.name is None:
            raise InvalidRunState(
                f"run {run_id!r} is not waiting for an approval; `spokehub runs show ID` shows "
                "what it waits for"
            )
        raise InvalidRunState(
            f"run {run_id!r} has no pending approval named {vote.name!r}; pending: "
            f"{sorted(a.name for a in approvals if a.closed is None) or 'none'}"
        )
    target = chosen[0]
    if target.closed is not None:
        raise ApprovalClosed(
            f"approval {target.name!r} of run {run_id!r} is closed: it {target.closed}; a "
            "decision after an approval closed is not recorded"
        )
    return target


def _votes(conn: Conn, run_id: str, seq: int, cipher: PayloadCipher | None) -> list[Vote]:
    rows = conn.execute(
        "SELECT actor, approved, role, comment, at, via FROM approval_votes "
        "WHERE run_id = ? AND seq = ? ORDER BY at, actor",
        (run_id, seq),
    ).fetchall()
    return [
        Vote(r[0], bool(r[1]), r[2], open_text(cipher, r[3]) if r[3] else None, float(r[4]), r[5])
        for r in rows
    ]


def count_vote(
    conn: Conn,
    run_id: str,
    events: Sequence[Event],
    queued: set[str],
    vote: ApprovalVote,
    now: float,
    cipher: PayloadCipher | None = None,
) -> Counted:
    """Check ``vote`` against the approval's rules, record it, and tell whether it closed it."""
    target = _pick(run_id, _approvals(events), vote, queued, now)
    rules = ApprovalRules.from_data(target.events[0].data)
    state = approval_state(rules, target.events)
    first = events[0].data if events else {}
    started_by = first.get("started_by", first.get("by"))
    votes = _votes(conn, run_id, target.seq, cipher)
    refusal = check_voter(rules, state.assignees, Actor(vote.by, vote.role), started_by, votes)
    if refusal is not None:
        kind, message = refusal
        raise (ApprovalForbidden if kind == "forbidden" else DuplicateVote)(message)
    cast = Vote(vote.by, vote.approved, vote.role, vote.comment, now, vote.via)
    sealed = vote.comment
    if sealed is not None and cipher is not None:
        sealed = cipher.seal(sealed)
    conn.execute(
        "INSERT INTO approval_votes (run_id, seq, actor, role, approved, comment, via, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, target.seq, vote.by, vote.role, int(vote.approved), sealed, vote.via, now),
    )
    votes.append(cast)
    verdict = tally(rules, votes)
    result = VoteResult(
        run_id=run_id,
        name=target.name,
        seq=target.seq,
        outcome=verdict.value,
        approvals=len({v.by for v in votes if v.approved}),
        quorum=rules.quorum,
        rejections=len({v.by for v in votes if not v.approved}),
    )
    if verdict is Verdict.OPEN:
        return Counted(result, None)
    decision = {
        "approved": verdict is Verdict.APPROVED,
        "comment": vote.comment,
        "by": vote.by,
        "votes": [v.to_dict() for v in votes],
    }
    return Counted(result, decision)


def use_link(conn: Conn, link_id: str, run_id: str, now: float) -> None:
    """Mark a signed link used; a second use is refused (it rolls back with a failed vote)."""
    cur = conn.execute(
        "INSERT INTO approval_links_used (id, run_id, used_at) VALUES (?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        (link_id, run_id, now),
    )
    if cur.rowcount != 1:
        raise ApprovalLinkGone(
            "this approval link was used already; a link works once. Ask for a new link, or "
            "decide in the approvals inbox"
        )
