"""What spokehub owns at each target (key, digest, release), the content it wrote, and state.

All reads and writes go through ``Store.transact`` on the tables of the ``distribution``
migration, so they work on every backend. Content is kept by digest (``dist_blobs``) so that a
rollback can restore exactly what an earlier release applied.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from spokehub.config import Settings
from spokehub.store import Store, open_store
from spokehub.store.base import Tx


@dataclass(frozen=True, slots=True)
class Entry:
    """One owned resource at a target."""

    key: str
    digest: str
    release: str


@dataclass(frozen=True, slots=True)
class Change:
    """An inventory update: ``digest=None`` removes the key."""

    key: str
    digest: str | None
    release: str
    data: bytes | None = None


@asynccontextmanager
async def open_state(db: str) -> AsyncIterator[Store]:
    """A store for steps, opened on the database the rollout was started on."""
    store = open_store(Settings(database_url=db))
    try:
        yield store
    finally:
        await store.close()


async def load(store: Store, distribution: str, target: str) -> dict[str, Entry]:
    def read(tx: Tx) -> dict[str, Entry]:
        rows = tx.execute(
            "SELECT key, digest, release FROM dist_inventory "
            "WHERE distribution = ? AND target = ? ORDER BY key",
            (distribution, target),
        ).fetchall()
        return {r[0]: Entry(r[0], r[1], r[2]) for r in rows}

    return await store.transact(read, write=False)


async def load_all(store: Store, distribution: str) -> dict[str, dict[str, Entry]]:
    def read(tx: Tx) -> dict[str, dict[str, Entry]]:
        rows = tx.execute(
            "SELECT target, key, digest, release FROM dist_inventory "
            "WHERE distribution = ? ORDER BY target, key",
            (distribution,),
        ).fetchall()
        out: dict[str, dict[str, Entry]] = {}
        for t, k, d, r in rows:
            out.setdefault(t, {})[k] = Entry(k, d, r)
        return out

    return await store.transact(read, write=False)


def record_tx(
    tx: Tx, distribution: str, target: str, changes: Iterable[Change], now: float
) -> None:
    """Apply inventory changes inside an open transaction."""
    for ch in changes:
        if ch.digest is None:
            tx.execute(
                "DELETE FROM dist_inventory WHERE distribution = ? AND target = ? AND key = ?",
                (distribution, target, ch.key),
            )
            continue
        if ch.data is not None:
            tx.execute(
                "INSERT INTO dist_blobs (digest, data) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (ch.digest, base64.b64encode(ch.data).decode()),
            )
        tx.execute(
            "INSERT INTO dist_inventory (distribution, target, key, digest, release, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (distribution, target, key) DO UPDATE SET "
            "digest = excluded.digest, release = excluded.release, "
            "updated_at = excluded.updated_at",
            (distribution, target, ch.key, ch.digest, ch.release, now),
        )


async def record(
    store: Store, distribution: str, target: str, changes: Iterable[Change], now: float
) -> None:
    items = list(changes)
    await store.transact(lambda tx: record_tx(tx, distribution, target, items, now))


async def blobs(store: Store, digests: Iterable[str]) -> dict[str, bytes]:
    wanted = sorted(set(digests))

    def read(tx: Tx) -> dict[str, bytes]:
        out = {}
        for d in wanted:
            row = tx.execute("SELECT data FROM dist_blobs WHERE digest = ?", (d,)).fetchone()
            if row is not None:
                out[d] = base64.b64decode(row[0])
        return out

    return await store.transact(read, write=False)


# -- promotions (one per distribution x release) and per-target state --------------------------


async def set_promotion(
    store: Store,
    distribution: str,
    release: str,
    status: str,
    now: float,
    *,
    run_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    body = json.dumps(dict(detail or {}), sort_keys=True)

    def write(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO dist_promotions (distribution, release, status, run_id, detail, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (distribution, release) DO UPDATE SET status = excluded.status, "
            "run_id = COALESCE(excluded.run_id, dist_promotions.run_id), "
            "detail = excluded.detail, updated_at = excluded.updated_at",
            (distribution, release, status, run_id, body, now, now),
        )

    await store.transact(write)


async def promotions(store: Store, distribution: str) -> list[dict[str, Any]]:
    def read(tx: Tx) -> list[dict[str, Any]]:
        rows = tx.execute(
            "SELECT release, status, run_id, detail, created_at, updated_at FROM dist_promotions "
            "WHERE distribution = ? ORDER BY created_at, release",
            (distribution,),
        ).fetchall()
        return [
            {
                "release": r[0],
                "status": r[1],
                "run_id": r[2],
                "detail": json.loads(r[3]),
                "created_at": r[4],
                "updated_at": r[5],
            }
            for r in rows
        ]

    return await store.transact(read, write=False)


async def set_target(
    store: Store,
    distribution: str,
    target: str,
    now: float,
    *,
    release: str | None = None,
    health: str | None = None,
    sync: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Update a target's row; fields left None keep their stored value."""

    def write(tx: Tx) -> None:
        row = tx.execute(
            "SELECT release, health, sync, detail FROM dist_targets "
            "WHERE distribution = ? AND target = ?",
            (distribution, target),
        ).fetchone()
        old = row or (None, "Unknown", "Unknown", "{}")
        merged = {**json.loads(old[3]), **dict(detail or {})}
        tx.execute(
            "INSERT INTO dist_targets (distribution, target, release, health, sync, detail, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (distribution, target) DO "
            "UPDATE SET release = excluded.release, health = excluded.health, "
            "sync = excluded.sync, detail = excluded.detail, updated_at = excluded.updated_at",
            (
                distribution,
                target,
                release if release is not None else old[0],
                health or old[1],
                sync or old[2],
                json.dumps(merged, sort_keys=True),
                now,
            ),
        )

    await store.transact(write)


async def targets(store: Store, distribution: str) -> dict[str, dict[str, Any]]:
    def read(tx: Tx) -> dict[str, dict[str, Any]]:
        rows = tx.execute(
            "SELECT target, release, health, sync, detail, updated_at FROM dist_targets "
            "WHERE distribution = ? ORDER BY target",
            (distribution,),
        ).fetchall()
        return {
            r[0]: {
                "release": r[1],
                "health": r[2],
                "sync": r[3],
                "detail": json.loads(r[4]),
                "updated_at": r[5],
            }
            for r in rows
        }

    return await store.transact(read, write=False)
