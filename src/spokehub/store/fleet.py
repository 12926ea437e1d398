"""The SQL of the worker registry and of queue statistics (shared by both engines)."""

from __future__ import annotations

import json
from typing import Any

from spokehub.store.base import QueueStats, WorkerInfo

Conn = Any  # a DB-API connection taking ``?`` placeholders


def report_worker(conn: Conn, w: WorkerInfo) -> None:
    conn.execute(
        "INSERT INTO workers (owner, name, host, pid, queues, concurrency, active, state, "
        "started_at, heartbeat_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (owner) DO UPDATE "
        "SET active = excluded.active, state = excluded.state, "
        "heartbeat_at = excluded.heartbeat_at",
        (
            w.owner,
            w.name,
            w.host,
            w.pid,
            json.dumps(list(w.queues)),
            w.concurrency,
            w.active,
            w.state,
            w.started_at,
            w.heartbeat_at,
        ),
    )


def list_workers(conn: Conn, seen_since: float | None) -> list[WorkerInfo]:
    rows = conn.execute(
        "SELECT owner, name, host, pid, queues, concurrency, active, state, started_at, "
        "heartbeat_at FROM workers WHERE heartbeat_at >= ? ORDER BY name, started_at",
        (seen_since if seen_since is not None else float("-inf"),),
    ).fetchall()
    return [
        WorkerInfo(
            owner=r[0],
            name=r[1],
            host=r[2],
            pid=r[3],
            queues=tuple(json.loads(r[4])),
            concurrency=r[5],
            active=r[6],
            state=r[7],
            started_at=r[8],
            heartbeat_at=r[9],
        )
        for r in rows
    ]


def queue_stats(conn: Conn) -> list[QueueStats]:
    found: dict[str, QueueStats] = {}
    for queue, status, count, oldest in conn.execute(
        "SELECT queue, status, COUNT(*), MIN(created_at) FROM runs "
        "WHERE status IN ('pending', 'running', 'waiting') GROUP BY queue, status"
    ).fetchall():
        stats = found.setdefault(queue, QueueStats(queue))
        stats.counts[status] = count
        if status == "pending":
            found[queue] = QueueStats(queue, stats.counts, oldest)
    return [found[q] for q in sorted(found)]
