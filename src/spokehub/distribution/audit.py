"""The distribution audit trail: append-only, hash-chained rows in ``dist_audit``.

Each entry's hash covers its fields and the previous entry's hash, so ``verify`` finds any edit,
deletion or reordering. Until the governance layer's audit lands this is the ledger of policy
decisions, plans, applies, measurements, gates, rollbacks and drift.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spokehub.store import Store
from spokehub.store.base import Tx

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: float
    distribution: str
    release: str
    target: str
    kind: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "distribution": self.distribution,
            "release": self.release,
            "target": self.target,
            "kind": self.kind,
            "detail": self.detail,
            "hash": self.hash,
        }


def _hash(prev: str, at: float, dist: str, release: str, target: str, kind: str, body: str) -> str:
    text = json.dumps([prev, repr(at), dist, release, target, kind, body])
    return hashlib.sha256(text.encode()).hexdigest()


def append_tx(
    tx: Tx,
    *,
    at: float,
    distribution: str,
    release: str,
    target: str,
    kind: str,
    detail: Mapping[str, Any],
) -> str:
    """Append one entry inside an open write transaction; returns its hash."""
    row = tx.execute("SELECT hash FROM dist_audit ORDER BY seq DESC LIMIT 1").fetchone()
    prev = row[0] if row else GENESIS
    body = json.dumps(dict(detail), sort_keys=True, default=str)
    digest = _hash(prev, at, distribution, release, target, kind, body)
    tx.execute(
        "INSERT INTO dist_audit (at, distribution, release, target, kind, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (at, distribution, release, target, kind, body, prev, digest),
    )
    return digest


async def append(
    store: Store,
    *,
    at: float,
    distribution: str,
    release: str,
    kind: str,
    detail: Mapping[str, Any],
    target: str = "",
) -> str:
    # Two writers may read the same last hash; the UNIQUE prev_hash index makes one of them
    # fail, and it retries on top of the other (PostgreSQL; SQLite has a single writer).
    for attempt in range(8):
        try:
            return await _append_once(store, at, distribution, release, kind, detail, target)
        except Exception:
            if attempt == 7:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def _append_once(
    store: Store,
    at: float,
    distribution: str,
    release: str,
    kind: str,
    detail: Mapping[str, Any],
    target: str,
) -> str:
    return await store.transact(
        lambda tx: append_tx(
            tx,
            at=at,
            distribution=distribution,
            release=release,
            target=target,
            kind=kind,
            detail=detail,
        )
    )


def _rows(tx: Tx, distribution: str | None, release: str | None) -> list[AuditEntry]:
    sql = (
        "SELECT seq, at, distribution, release, target, kind, detail, prev_hash, hash "
        "FROM dist_audit"
    )
    where, params = [], []
    if distribution is not None:
        where.append("distribution = ?")
        params.append(distribution)
    if release is not None:
        where.append("release = ?")
        params.append(release)
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = tx.execute(sql + " ORDER BY seq", params).fetchall()
    return [
        AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8]) for r in rows
    ]


async def entries(
    store: Store, *, distribution: str | None = None, release: str | None = None
) -> list[AuditEntry]:
    return await store.transact(lambda tx: _rows(tx, distribution, release), write=False)


async def verify(store: Store) -> tuple[bool, int, str]:
    """Recompute the whole chain: (ok, entries checked, first problem or '')."""

    def check(tx: Tx) -> tuple[bool, int, str]:
        rows = tx.execute(
            "SELECT seq, at, distribution, release, target, kind, detail, prev_hash, hash "
            "FROM dist_audit ORDER BY seq"
        ).fetchall()
        prev = GENESIS
        for r in rows:
            if r[7] != prev:
                return False, len(rows), f"entry {r[0]}: previous hash does not match"
            if _hash(prev, r[1], r[2], r[3], r[4], r[5], r[6]) != r[8]:
                return False, len(rows), f"entry {r[0]}: content does not match its hash"
            prev = r[8]
        return True, len(rows), ""

    return await store.transact(check, write=False)
