"""Small queries of the store that need none of its state (shared by both engines)."""

from __future__ import annotations

import json
from typing import Any

from spokehub.errors import RunNotFound, StoreError
from spokehub.store.base import InboxItem, RunRecord
from spokehub.store.crypto import PayloadCipher, open_text
from spokehub.types import JSON, RunStatus

Conn = Any  # a DB-API connection taking ``?`` placeholders


def status_of(conn: Conn, run_id: str) -> str:
    row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise RunNotFound(run_id)
    return str(row[0])


def load(conn: Conn, text: str | None, blob: str | None, cipher: PayloadCipher | None) -> JSON:
    if blob is not None:
        row = conn.execute("SELECT data FROM blobs WHERE hash = ?", (blob,)).fetchone()
        if row is None:
            raise StoreError(f"blob {blob} is missing; the database was altered by hand")
        text = row[0]
    return json.loads(open_text(cipher, text)) if text is not None else None


def run_record(conn: Conn, r: tuple[Any, ...], cipher: PayloadCipher | None) -> RunRecord:
    return RunRecord(
        id=r[0],
        workflow=r[1],
        version=r[2],
        queue=r[3],
        status=RunStatus(r[4]),
        priority=r[5],
        input=load(conn, r[6], r[7], cipher) or {},
        input_hash=r[8],
        result=load(conn, r[9], r[10], cipher),
        error=json.loads(r[11]) if r[11] else None,
        parent_id=r[12],
        root_id=r[13],
        created_at=r[14],
        updated_at=r[15],
        finished_at=r[16],
        wake_at=r[17],
        waiting_on=json.loads(r[18]) if r[18] else None,
        lease_owner=r[19],
        lease_expires=r[20],
        lease_epoch=r[21],
        cancel_requested=bool(r[22]),
        wakeups=r[23],
        recoveries=r[24],
        concurrency_key=r[25],
        started_at=r[26],
    )


def inbox(conn: Conn, run_id: str, cipher: PayloadCipher | None) -> list[InboxItem]:
    rows = conn.execute(
        "SELECT id, run_id, kind, name, payload, created_at FROM inbox "
        "WHERE run_id = ? AND consumed_at IS NULL ORDER BY id",
        (run_id,),
    ).fetchall()
    return [
        InboxItem(r[0], r[1], r[2], r[3], json.loads(open_text(cipher, r[4])), r[5]) for r in rows
    ]


def renew(conn: Conn, owner: str, leases: dict[str, int], until: float) -> set[str]:
    lost = set()
    for run_id, epoch in leases.items():
        cur = conn.execute(
            "UPDATE runs SET lease_expires = ? "
            "WHERE id = ? AND lease_owner = ? AND lease_epoch = ?",
            (until, run_id, owner, epoch),
        )
        if cur.rowcount != 1:
            lost.add(run_id)
    return lost


def running_owners(conn: Conn) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT lease_owner FROM runs WHERE status = 'running' AND lease_owner IS NOT NULL"
    )
    return [r[0] for r in rows.fetchall()]


def next_wake(conn: Conn, queues: tuple[str, ...], workflows: tuple[str, ...]) -> float | None:
    q = ",".join("?" * len(queues))
    w = ",".join("?" * len(workflows))
    row = conn.execute(
        f"SELECT MIN(wake_at) FROM runs WHERE status = 'waiting' AND wake_at IS NOT NULL "
        f"AND queue IN ({q}) AND workflow IN ({w})",
        (*queues, *workflows),
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def prune(conn: Conn, before: float) -> tuple[int, int, int]:
    old = "SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?"
    events = conn.execute(f"DELETE FROM events WHERE run_id IN ({old})", (before,)).rowcount
    conn.execute(f"DELETE FROM inbox WHERE run_id IN ({old})", (before,))
    conn.execute(f"DELETE FROM approval_votes WHERE run_id IN ({old})", (before,))
    conn.execute(f"DELETE FROM approval_links_used WHERE run_id IN ({old})", (before,))
    runs = conn.execute(
        "DELETE FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?", (before,)
    ).rowcount
    blobs = conn.execute(
        "DELETE FROM blobs WHERE hash NOT IN (SELECT blob FROM events WHERE blob IS NOT NULL) "
        "AND hash NOT IN (SELECT input_blob FROM runs WHERE input_blob IS NOT NULL) "
        "AND hash NOT IN (SELECT result_blob FROM runs WHERE result_blob IS NOT NULL)"
    ).rowcount
    return runs, events, blobs
