"""The audit trail: operator actions and policy decisions in a hash-chained table.

Each entry holds the hash of the one before it (``prev_hash``) and its own ``hash`` over that
and its canonical JSON (seq, time, actor, action, run id, details). ``verify`` recomputes the
chain from the first entry and names the first entry that does not fit: an edited entry fails
its own hash, a deleted or inserted one breaks the numbering or the link, a reordered pair
breaks the link.

Appends are serialised: SQLite has one writer; on PostgreSQL each append takes a
transaction-scoped advisory lock before it reads the chain's head, so concurrent writers (API
servers, workers, CLIs) keep the chain linear. ``seq`` is also the primary key, so two appends
that read the same head could never both commit.

The chain proves that nothing *inside* it changed. Someone who can write the table could still
cut entries off the end, or rewrite every hash from some point on; export the head hash
(``spokehub audit verify`` prints it) to somewhere they cannot write, and compare.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spokehub.engine.serde import canonical, to_json
from spokehub.runtime.clock import Clock
from spokehub.store.base import Store, Tx

if TYPE_CHECKING:
    from spokehub.governance.decisions import PolicyDecision

__all__ = ["GENESIS", "AuditEntry", "AuditLog", "Verification"]

log = logging.getLogger("spokehub.audit")

GENESIS = "0" * 64
# pg_advisory_xact_lock key of the audit chain (any constant no other feature uses).
_LOCK = 0x5A0D17
_COLUMNS = "seq, at, actor, action, run_id, details, prev_hash, hash"

Redactor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: float
    actor: str | None
    action: str
    run_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "run_id": self.run_id,
            "details": self.details,
        }

    def expected_hash(self) -> str:
        return entry_hash(self.prev_hash, self.body())

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "prev_hash": self.prev_hash, "hash": self.hash}


def entry_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical(body)}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify`` found: ``ok``, how many entries it checked, the head hash, and the
    first bad entry's ``seq`` with what is wrong with it."""

    ok: bool
    entries: int
    head: str
    bad_seq: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "bad_seq": self.bad_seq,
            "problem": self.problem,
        }


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=int(row[0]),
        at=float(row[1]),
        actor=row[2],
        action=row[3],
        run_id=row[4],
        details=json.loads(row[5]),
        prev_hash=row[6],
        hash=row[7],
    )


class AuditLog:
    """Append to, read and verify the audit chain of one database.

    Args:
        store: the database (its ``audit_log`` table comes with the migrations).
        clock: the time of each entry.
        redact: applied to every entry's details before it is hashed and stored (the secrets
            layer passes its redactor, so a secret's value never reaches the trail).
    """

    def __init__(self, store: Store, clock: Clock, *, redact: Redactor | None = None) -> None:
        self.store = store
        self.clock = clock
        self.redact = redact

    async def append(
        self,
        action: str,
        *,
        actor: str | None = None,
        run_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Add one entry at the head of the chain."""
        if not action:
            raise ValueError("an audit entry needs an action, e.g. 'run.start'")
        data = to_json(details or {}, what="audit details")
        if self.redact is not None:
            data = self.redact(data)
        now = self.clock.now()
        postgres = getattr(self.store, "dialect", "") == "postgresql"

        def insert(tx: Tx) -> AuditEntry:
            if postgres:
                tx.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK,))
            head = tx.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (int(head[0]) + 1, head[1]) if head is not None else (1, GENESIS)
            body = {
                "seq": seq,
                "at": now,
                "actor": actor,
                "action": action,
                "run_id": run_id,
                "details": data,
            }
            digest = entry_hash(prev, body)
            tx.execute(
                f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, now, actor, action, run_id, canonical(data), prev, digest),
            )
            return AuditEntry(seq, now, actor, action, run_id, data, prev, digest)

        return await self.store.transact(insert)

    async def policy_decision(self, decision: PolicyDecision) -> None:
        """``DecisionSink``: every policy decision a binding matched becomes an entry."""
        await self.append(
            "policy.decision",
            actor=decision.subject.get("actor"),
            run_id=decision.subject.get("run_id"),
            details=decision.to_dict(),
        )

    async def entries(
        self,
        *,
        since: float | None = None,
        run_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        mentions: dict[str, Any] | None = None,
    ) -> list[AuditEntry]:
        """Entries in chain order, filtered (``action`` matches a prefix, e.g. ``run.``;
        ``mentions`` keeps entries whose stored details hold each of these key/value pairs
        somewhere, as canonical JSON: a cheap prefilter, exact matching is the caller's)."""
        where: list[str] = ["seq > ?"]
        params: list[Any] = [after_seq]
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        if action is not None:
            where.append("action LIKE ?")
            params.append(action.replace("%", "") + "%")
        for key, value in (mentions or {}).items():
            fragment = canonical({key: value})[1:-1]  # "key":value, as the details store it
            escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("details LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        sql = f"SELECT {_COLUMNS} FROM audit_log WHERE {' AND '.join(where)} ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"

        def select(tx: Tx) -> list[AuditEntry]:
            return [_entry(row) for row in tx.execute(sql, params).fetchall()]

        return await self.store.transact(select, write=False)

    async def verify(self, *, batch: int = 1000) -> Verification:
        """Recompute the chain from its first entry; stop at the first entry that breaks it."""
        checker = _Checker()
        after = 0
        while True:
            page = await self.entries(after_seq=after, limit=batch)
            for entry in page:
                problem = checker.check(entry)
                if problem is not None:
                    return Verification(False, checker.count, checker.head, entry.seq, problem)
            if len(page) < batch:
                return Verification(True, checker.count, checker.head)
            after = page[-1].seq


class _Checker:
    def __init__(self) -> None:
        self.count = 0
        self.head = GENESIS
        self.expected_seq = 1

    def check(self, entry: AuditEntry) -> str | None:
        if entry.seq != self.expected_seq:
            what = "missing (deleted)" if entry.seq > self.expected_seq else "duplicated"
            return (
                f"entry {entry.seq} follows entry {self.expected_seq - 1}: entry "
                f"{self.expected_seq} is {what}, or entries were renumbered"
            )
        if entry.prev_hash != self.head:
            return (
                f"entry {entry.seq} does not link to entry {entry.seq - 1} (its prev_hash "
                f"differs): an entry was inserted, deleted or moved here"
            )
        if entry.expected_hash() != entry.hash:
            return (
                f"entry {entry.seq} ({entry.action}) was edited: its content no longer "
                "matches its hash"
            )
        self.count += 1
        self.head = entry.hash
        self.expected_seq += 1
        return None


def jsonl(entries: list[AuditEntry]) -> Iterator[str]:
    """One JSON line per entry (the export format)."""
    for entry in entries:
        yield json.dumps(entry.to_dict(), sort_keys=True, ensure_ascii=False)
