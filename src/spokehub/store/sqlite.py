"""The SQLite backend: one file, WAL, ``synchronous=FULL``, group commit on one thread."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from spokehub.config import Settings
from spokehub.engine.events import Event, EventKind, upgrade
from spokehub.errors import (
    InvalidRunState,
    LeaseLost,
    RunIdConflict,
    RunNotFound,
    SchemaError,
    StoreError,
)
from spokehub.store import schema
from spokehub.store.base import (
    Claimed,
    Flush,
    FlushResult,
    InboxItem,
    NewRun,
    PruneStats,
    QueueStats,
    RunRecord,
    StartResult,
    T,
    Tx,
    WorkerInfo,
)
from spokehub.store.executor import Executor
from spokehub.types import JSON, RunStatus

_RUN_COLUMNS = (
    "id, workflow, version, queue, status, priority, input, input_blob, input_hash, result, "
    "result_blob, error, parent_id, root_id, created_at, updated_at, finished_at, wake_at, "
    "waiting_on, lease_owner, lease_expires, lease_epoch, cancel_requested, wakeups, recoveries"
)
_FINISHED = ("completed", "failed", "cancelled")


class _SqliteDialect:
    def begin(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")

    def savepoint(self, conn: sqlite3.Connection) -> None:
        conn.execute("SAVEPOINT op")

    def release(self, conn: sqlite3.Connection) -> None:
        conn.execute("RELEASE op")

    def rollback_to(self, conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK TO op")

    def changes(self, conn: sqlite3.Connection) -> int:
        return conn.total_changes

    def translate(self, exc: Exception) -> Exception:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return StoreError(
                "the SQLite database stayed locked by another process past busy_timeout_ms; "
                "raise SPOKEHUB_BUSY_TIMEOUT_MS or use PostgreSQL for many writers"
            )
        if isinstance(exc, sqlite3.Error):
            return StoreError(f"SQLite error: {exc}")
        return exc


def parse_sqlite_url(url: str) -> str:
    """``sqlite:///rel.db``, ``sqlite:////abs.db``, ``sqlite:///:memory:`` or a plain path."""
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        if not rest.startswith("/"):
            raise SchemaError(f"bad SQLite URL {url!r}; write sqlite:///relative.db or a path")
        return rest[1:] or ":memory:"
    return url


class SqliteStore:
    """A Store on one SQLite file. Create it with ``open_store``."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        self.path = parse_sqlite_url(settings.database_url)
        self._settings = settings
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._x: Executor[sqlite3.Connection] = Executor(
            self._connect, _SqliteDialect(), name="spokehub-sqlite"
        )
        self.stats = self._x.stats

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path!r}: {exc}") from None
        pragmas = (
            f"PRAGMA busy_timeout = {int(self._settings.busy_timeout_ms)}",
            "PRAGMA auto_vacuum = INCREMENTAL",  # takes effect on a new file only
            "PRAGMA journal_mode = WAL",
            f"PRAGMA synchronous = {self._settings.sqlite_synchronous.upper()}",
            "PRAGMA journal_size_limit = 67108864",
            "PRAGMA foreign_keys = OFF",
        )
        try:
            for pragma in pragmas:
                conn.execute(pragma)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(
                f"{self.path!r} is not a usable SQLite database ({exc}); point "
                "SPOKEHUB_DATABASE_URL or --db at a spokehub database or a new path"
            ) from None
        return conn

    async def close(self) -> None:
        self._x.close()

    # -- schema -----------------------------------------------------------------------------
    async def migrate(self) -> list[str]:
        return await self._x.run("alone", _migrate)

    async def schema_version(self) -> int:
        return await self._x.run("read", _schema_version)

    # -- runs -------------------------------------------------------------------------------
    async def start(self, new: NewRun, now: float) -> StartResult:
        return await self._x.run("write", self._start, new, now)

    async def insert_run(self, new: NewRun, now: float) -> RunRecord:
        return await self._x.run("write", self._insert_fresh, new, now)

    async def claim(
        self,
        *,
        owner: str,
        queues: Sequence[str],
        workflows: Sequence[str],
        limit: int,
        now: float,
        lease_seconds: float,
        root_id: str | None = None,
        dead_owners: Sequence[str] = (),
    ) -> list[Claimed]:
        if limit <= 0 or not queues or not workflows:
            return []
        return await self._x.run(
            "write",
            self._claim,
            owner,
            tuple(queues),
            tuple(workflows),
            limit,
            now,
            lease_seconds,
            root_id,
            tuple(dead_owners),
        )

    async def flush(self, flush: Flush, *, direct: bool = False) -> FlushResult:
        return await self._x.run("write", self._flush, flush, direct=direct)

    async def renew(self, owner: str, leases: dict[str, int], until: float) -> set[str]:
        if not leases:
            return set()
        return await self._x.run("write", _renew, owner, dict(leases), until)

    async def running_owners(self) -> list[str]:
        return await self._x.run("read", _running_owners)

    async def get_run(self, run_id: str) -> RunRecord:
        return await self._x.run("read", self._get_run, run_id)

    async def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        return await self._x.run("read", self._get_runs, tuple(run_ids))

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        limit: int = 100,
        created_after: float | None = None,
        created_before: float | None = None,
        search: str | None = None,
    ) -> list[RunRecord]:
        return await self._x.run(
            "read",
            self._list_runs,
            status,
            workflow,
            limit,
            created_after,
            created_before,
            search,
        )

    async def events(self, run_id: str) -> list[Event]:
        return await self._x.run("read", self._events_checked, run_id)

    async def inbox(self, run_id: str) -> list[InboxItem]:
        return await self._x.run("read", _inbox, run_id)

    async def next_wake(self, *, queues: Sequence[str], workflows: Sequence[str]) -> float | None:
        return await self._x.run("read", _next_wake, tuple(queues), tuple(workflows))

    async def send_signal(self, run_id: str, name: str, payload: JSON, now: float) -> int:
        return await self._x.run("write", self._send, run_id, "signal", name, payload, now)

    async def decide_approval(
        self, run_id: str, name: str | None, decision: dict[str, Any], now: float
    ) -> str:
        return await self._x.run("write", self._decide, run_id, name, decision, now)

    async def request_cancel(self, run_id: str, now: float) -> RunRecord:
        return await self._x.run("write", self._cancel, run_id, now)

    async def prune(self, *, finished_before: float) -> PruneStats:
        before = self._size()
        counts = await self._x.run("write", _prune, finished_before)
        await self._x.run("alone", _compact)
        return PruneStats(*counts, bytes_before=before, bytes_after=self._size())

    async def report_worker(self, info: WorkerInfo) -> None:
        await self._x.run("write", _report_worker, info)

    async def list_workers(self, *, seen_since: float | None = None) -> list[WorkerInfo]:
        return await self._x.run("read", _list_workers, seen_since)

    async def queue_stats(self) -> list[QueueStats]:
        return await self._x.run("read", _queue_stats)

    async def transact(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        return await self._x.run("write" if write else "read", fn)

    def _size(self) -> int:
        if self.path == ":memory:":
            return 0
        return sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))

    # -- operations (run on the database thread) --------------------------------------------
    def _payload(self, conn: sqlite3.Connection, value: JSON) -> tuple[str | None, str | None]:
        """Encode a JSON value; large ones go to the blob table once, by content hash."""
        text = json.dumps(value, separators=(",", ":"))
        if len(text) <= self._settings.blob_threshold:
            return text, None
        digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        conn.execute(
            "INSERT OR IGNORE INTO blobs (hash, data, size, created_at) VALUES (?, ?, ?, "
            "strftime('%s','now'))",
            (digest, text, len(text)),
        )
        return None, digest

    def _insert_events(
        self, conn: sqlite3.Connection, run_id: str, events: Sequence[Event]
    ) -> None:
        rows = []
        for e in events:
            data, blob = self._payload(conn, e.data)
            rows.append((run_id, e.position, e.kind.value, e.seq, e.at, e.v, data, blob))
        try:
            conn.executemany(
                "INSERT INTO events (run_id, position, kind, seq, at, v, data, blob) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        except sqlite3.IntegrityError:
            raise LeaseLost(
                f"run {run_id!r}: ledger position already written; another worker owns it"
            ) from None

    def _insert_new(self, conn: sqlite3.Connection, new: NewRun, now: float) -> None:
        data, blob = self._payload(conn, new.input)
        claimed = new.claim_by is not None
        cur = conn.execute(
            "INSERT INTO runs (id, workflow, version, queue, status, priority, input, input_blob, "
            "input_hash, parent_id, root_id, created_at, updated_at, lease_owner, lease_expires, "
            "lease_epoch) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING",
            (
                new.id,
                new.workflow,
                new.version,
                new.queue,
                "running" if claimed else "pending",
                new.priority,
                data,
                blob,
                new.input_hash,
                new.parent_id,
                new.root_id or new.id,
                now,
                now,
                new.claim_by,
                now + new.lease_seconds if claimed else None,
                1 if claimed else 0,
            ),
        )
        if cur.rowcount == 1:
            events = new.events or (
                Event(
                    0,
                    EventKind.RUN_STARTED,
                    now,
                    data={"workflow": new.workflow, "queue": new.queue, "parent": new.parent_id},
                ),
            )
            self._insert_events(conn, new.id, events)

    def _insert_fresh(self, conn: sqlite3.Connection, new: NewRun, now: float) -> RunRecord:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (new.id,)).fetchone():
            raise RunIdConflict(f"a run with id {new.id!r} already exists; choose another id")
        self._insert_new(conn, new, now)
        return self._get_run(conn, new.id)

    def _start(self, conn: sqlite3.Connection, new: NewRun, now: float) -> StartResult:
        existing = conn.execute(
            "SELECT workflow, input_hash FROM runs WHERE id = ?", (new.id,)
        ).fetchone()
        if existing is not None:
            if existing[0] != new.workflow or existing[1] != new.input_hash:
                what = "workflow" if existing[0] != new.workflow else "input"
                raise RunIdConflict(
                    f"run {new.id!r} already exists with a different {what} "
                    f"(workflow {existing[0]!r}); starting the same run_id again must repeat "
                    "the same workflow and input: pick a new run_id for new work"
                )
            return StartResult(self._get_run(conn, new.id), created=False, epoch=None)
        self._insert_new(conn, new, now)
        run = self._get_run(conn, new.id)
        epoch = run.lease_epoch if new.claim_by else None
        return StartResult(run, created=True, epoch=epoch, events=tuple(new.events))

    def _claim(
        self,
        conn: sqlite3.Connection,
        owner: str,
        queues: tuple[str, ...],
        workflows: tuple[str, ...],
        limit: int,
        now: float,
        lease_seconds: float,
        root_id: str | None,
        dead: tuple[str, ...],
    ) -> list[Claimed]:
        q = ",".join("?" * len(queues))
        w = ",".join("?" * len(workflows))
        scope = f"queue IN ({q}) AND workflow IN ({w})"
        params: list[Any] = [*queues, *workflows]
        if root_id is not None:
            scope += " AND root_id = ?"
            params.append(root_id)
        # Three small indexed queries rather than one OR: with a deep backlog, the OR made
        # SQLite sort every ready run on each claim (milliseconds on the only DB thread).
        d = ",".join("?" * len(dead)) or "NULL"
        ready = (
            ("status = 'pending'", (), "priority DESC, created_at"),
            ("status = 'waiting' AND wake_at <= ?", (now,), "wake_at"),
            (
                f"status = 'running' AND (lease_expires < ? OR lease_owner IN ({d}))",
                (now, *dead),
                "created_at",
            ),
        )
        found: list[tuple[int, float, str]] = []
        for cond, extra, order in ready:
            found += conn.execute(
                f"SELECT priority, created_at, id FROM runs WHERE {cond} AND {scope} "
                f"ORDER BY {order} LIMIT ?",
                (*extra, *params, limit),
            ).fetchall()
        if not found:
            return []
        found.sort(key=lambda r: (-r[0], r[1]))
        ids = [r[2] for r in found[:limit]]
        marks = ",".join("?" * len(ids))
        rows = conn.execute(
            "UPDATE runs SET lease_owner = ?, lease_expires = ?, lease_epoch = lease_epoch + 1, "
            "updated_at = ?, recoveries = recoveries + (status = 'running'), status = 'running' "
            f"WHERE id IN ({marks}) RETURNING id, lease_epoch",
            (owner, now + lease_seconds, now, *ids),
        ).fetchall()
        claimed = []
        for run_id, epoch in rows:
            claimed.append(Claimed(self._get_run(conn, run_id), epoch, self._events(conn, run_id)))
        return claimed

    def _flush(self, conn: sqlite3.Connection, f: Flush) -> FlushResult:
        sets = ["updated_at = ?", "lease_expires = ?", "version = COALESCE(version, ?)"]
        params: list[Any] = [f.now, f.lease_until, f.version]
        if f.finish is not None:
            result, result_blob = self._payload(conn, f.finish.result)
            sets += [
                "status = ?",
                "result = ?",
                "result_blob = ?",
                "error = ?",
                "finished_at = ?",
                "lease_owner = NULL",
                "lease_expires = NULL",
                "wake_at = NULL",
                "waiting_on = NULL",
            ]
            error = json.dumps(f.finish.error) if f.finish.error is not None else None
            params += [f.finish.status.value, result, result_blob, error, f.now]
        elif f.unload is not None:
            sets += [
                "status = 'waiting'",
                "wake_at = CASE WHEN wakeups != ? THEN ? ELSE ? END",
                "waiting_on = ?",
                "lease_owner = NULL",
                "lease_expires = NULL",
            ]
            params += [
                f.unload.wakeups_seen,
                f.now,
                f.unload.wake_at,
                json.dumps(f.unload.waiting_on),
            ]
        row = conn.execute(
            f"UPDATE runs SET {', '.join(sets)} WHERE id = ? AND lease_owner = ? AND "
            "lease_epoch = ? RETURNING cancel_requested, wakeups, parent_id",
            (*params, f.run_id, f.owner, f.epoch),
        ).fetchone()
        if row is None:
            raise LeaseLost(f"run {f.run_id!r} is no longer leased to {f.owner} (epoch {f.epoch})")
        if f.events:
            self._insert_events(conn, f.run_id, f.events)
        for item in f.consumed:
            cur = conn.execute(
                "UPDATE inbox SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL",
                (f.now, item),
            )
            if cur.rowcount != 1:
                raise LeaseLost(f"run {f.run_id!r}: inbox item {item} was consumed elsewhere")
        for child in f.children:
            self._insert_new(conn, child, f.now)
        if f.finish is not None and row[2] is not None:
            _wake(conn, row[2], f.now)
        return FlushResult(cancel_requested=bool(row[0]), wakeups=int(row[1]))

    def _send(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        kind: str,
        name: str,
        payload: JSON,
        now: float,
    ) -> int:
        status = _status(conn, run_id)
        if status in _FINISHED:
            raise InvalidRunState(
                f"run {run_id!r} is {status}; a {kind} can only go to a run that has not finished"
            )
        cur = conn.execute(
            "INSERT INTO inbox (run_id, kind, name, payload, created_at) VALUES (?,?,?,?,?)",
            (run_id, kind, name, json.dumps(payload, separators=(",", ":")), now),
        )
        _wake(conn, run_id, now)
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _decide(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        name: str | None,
        decision: dict[str, Any],
        now: float,
    ) -> str:
        status = _status(conn, run_id)
        if status in _FINISHED:
            raise InvalidRunState(f"run {run_id!r} is {status}; it waits for no approval")
        pending, expired = _pending_approvals(conn, run_id, now)
        if name is None and not pending and len(expired) == 1:
            name = next(iter(expired))
        if name is not None and name in expired:
            raise InvalidRunState(
                f"approval {name!r} of run {run_id!r} expired; its deadline has passed, so the "
                "run will take the timeout path and this decision was not recorded"
            )
        if name is None:
            if len(pending) > 1:
                raise InvalidRunState(
                    f"run {run_id!r} waits for several approvals {sorted(pending)}; "
                    "name the one you decide with --name"
                )
            if not pending:
                raise InvalidRunState(
                    f"run {run_id!r} is not waiting for an approval (it is {status}); "
                    "`spokehub runs show ID` shows what it waits for"
                )
            name = next(iter(pending))
        elif name not in pending:
            raise InvalidRunState(
                f"run {run_id!r} has no pending approval named {name!r}; pending: "
                f"{sorted(pending) or 'none'}"
            )
        self._send(conn, run_id, "approval", name, decision, now)
        return name

    def _cancel(self, conn: sqlite3.Connection, run_id: str, now: float) -> RunRecord:
        status = _status(conn, run_id)
        if status in _FINISHED:
            raise InvalidRunState(f"run {run_id!r} already {status}; there is nothing to cancel")
        row = conn.execute(
            "SELECT lease_epoch, parent_id FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if status == "pending" and row[0] == 0:
            # Never picked up by a worker: it ran nothing, so it ends here and now.
            conn.execute(
                "UPDATE runs SET status = 'cancelled', finished_at = ?, updated_at = ?, "
                "cancel_requested = 1, error = ? WHERE id = ?",
                (now, now, json.dumps({"type": "Cancelled", "message": "cancelled"}), run_id),
            )
            # Position 1 unless the run was created with a ledger (a fork): append after it.
            (position,) = conn.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM events WHERE run_id = ?", (run_id,)
            ).fetchone()
            self._insert_events(
                conn,
                run_id,
                [Event(position, EventKind.RUN_FINISHED, now, data={"status": "cancelled"})],
            )
            if row[1] is not None:
                _wake(conn, row[1], now)
        else:
            conn.execute(
                "UPDATE runs SET cancel_requested = 1, updated_at = ? WHERE id = ?",
                (now, run_id),
            )
            _wake(conn, run_id, now)
        return self._get_run(conn, run_id)

    def _get_run(self, conn: sqlite3.Connection, run_id: str) -> RunRecord:
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return _run_record(conn, row)

    def _get_runs(self, conn: sqlite3.Connection, run_ids: tuple[str, ...]) -> list[RunRecord]:
        if not run_ids:
            return []
        marks = ",".join("?" * len(run_ids))
        rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN ({marks})", run_ids)
        return [_run_record(conn, r) for r in rows.fetchall()]

    def _list_runs(
        self,
        conn: sqlite3.Connection,
        status: RunStatus | None,
        workflow: str | None,
        limit: int,
        created_after: float | None,
        created_before: float | None,
        search: str | None,
    ) -> list[RunRecord]:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        if workflow is not None:
            where.append("workflow = ?")
            params.append(workflow)
        if created_after is not None:
            where.append("created_at >= ?")
            params.append(created_after)
        if created_before is not None:
            where.append("created_at < ?")
            params.append(created_before)
        if search:
            escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("LOWER(id) LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs {clause} ORDER BY created_at DESC, id LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [_run_record(conn, r) for r in rows]

    def _events_checked(self, conn: sqlite3.Connection, run_id: str) -> list[Event]:
        _status(conn, run_id)
        return self._events(conn, run_id)

    def _events(self, conn: sqlite3.Connection, run_id: str) -> list[Event]:
        rows = conn.execute(
            "SELECT e.position, e.kind, e.seq, e.at, e.v, COALESCE(e.data, b.data) "
            "FROM events e LEFT JOIN blobs b ON b.hash = e.blob "
            "WHERE e.run_id = ? ORDER BY e.position",
            (run_id,),
        ).fetchall()
        out = []
        for position, kind, seq, at, v, data in rows:
            k = EventKind(kind)
            v, payload = upgrade(k, v, json.loads(data) if data else {})
            out.append(Event(position, k, at, seq, payload, v))
        return out


# -- helpers that need no store state ---------------------------------------------------------
def _status(conn: sqlite3.Connection, run_id: str) -> str:
    row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise RunNotFound(run_id)
    return str(row[0])


def _wake(conn: sqlite3.Connection, run_id: str, now: float) -> None:
    conn.execute(
        "UPDATE runs SET wakeups = wakeups + 1, "
        "wake_at = CASE WHEN status = 'waiting' THEN ? ELSE wake_at END WHERE id = ?",
        (now, run_id),
    )


def _load(conn: sqlite3.Connection, text: str | None, blob: str | None) -> JSON:
    if blob is not None:
        row = conn.execute("SELECT data FROM blobs WHERE hash = ?", (blob,)).fetchone()
        if row is None:
            raise StoreError(f"blob {blob} is missing; the database was altered by hand")
        text = row[0]
    return json.loads(text) if text is not None else None


def _run_record(conn: sqlite3.Connection, r: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        id=r[0],
        workflow=r[1],
        version=r[2],
        queue=r[3],
        status=RunStatus(r[4]),
        priority=r[5],
        input=_load(conn, r[6], r[7]) or {},
        input_hash=r[8],
        result=_load(conn, r[9], r[10]),
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
    )


def _pending_approvals(
    conn: sqlite3.Connection, run_id: str, now: float
) -> tuple[set[str], set[str]]:
    """(pending, expired) approval names of a run."""
    requested = {
        seq: json.loads(data)
        for seq, data in conn.execute(
            "SELECT seq, data FROM events WHERE run_id = ? AND kind = 'approval_requested'",
            (run_id,),
        )
    }
    closed = {
        seq
        for (seq,) in conn.execute(
            "SELECT seq FROM events WHERE run_id = ? AND kind IN "
            "('approval_decided', 'wait_timed_out')",
            (run_id,),
        )
    }
    queued = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM inbox WHERE run_id = ? AND kind = 'approval' AND consumed_at IS NULL",
            (run_id,),
        )
    }
    open_ = {seq: d for seq, d in requested.items() if seq not in closed}
    expired = {d["name"] for d in open_.values() if (d.get("deadline") or now + 1) < now}
    pending = {d["name"] for d in open_.values()} - queued - expired
    return pending, expired


def _inbox(conn: sqlite3.Connection, run_id: str) -> list[InboxItem]:
    rows = conn.execute(
        "SELECT id, run_id, kind, name, payload, created_at FROM inbox "
        "WHERE run_id = ? AND consumed_at IS NULL ORDER BY id",
        (run_id,),
    ).fetchall()
    return [InboxItem(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]


def _renew(conn: sqlite3.Connection, owner: str, leases: dict[str, int], until: float) -> set[str]:
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


def _running_owners(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT lease_owner FROM runs WHERE status = 'running' AND lease_owner IS NOT NULL"
    )
    return [r[0] for r in rows.fetchall()]


def _next_wake(
    conn: sqlite3.Connection, queues: tuple[str, ...], workflows: tuple[str, ...]
) -> float | None:
    q = ",".join("?" * len(queues))
    w = ",".join("?" * len(workflows))
    row = conn.execute(
        f"SELECT MIN(wake_at) FROM runs WHERE status = 'waiting' AND wake_at IS NOT NULL "
        f"AND queue IN ({q}) AND workflow IN ({w})",
        (*queues, *workflows),
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def _report_worker(conn: sqlite3.Connection, w: WorkerInfo) -> None:
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


def _list_workers(conn: sqlite3.Connection, seen_since: float | None) -> list[WorkerInfo]:
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


def _queue_stats(conn: sqlite3.Connection) -> list[QueueStats]:
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


def _prune(conn: sqlite3.Connection, before: float) -> tuple[int, int, int]:
    old = "SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?"
    events = conn.execute(f"DELETE FROM events WHERE run_id IN ({old})", (before,)).rowcount
    conn.execute(f"DELETE FROM inbox WHERE run_id IN ({old})", (before,))
    runs = conn.execute(
        "DELETE FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?", (before,)
    ).rowcount
    blobs = conn.execute(
        "DELETE FROM blobs WHERE hash NOT IN (SELECT blob FROM events WHERE blob IS NOT NULL) "
        "AND hash NOT IN (SELECT input_blob FROM runs WHERE input_blob IS NOT NULL) "
        "AND hash NOT IN (SELECT result_blob FROM runs WHERE result_blob IS NOT NULL)"
    ).rowcount
    return runs, events, blobs


def _compact(conn: sqlite3.Connection) -> None:
    """Return freed pages to the operating system and shrink the WAL file."""
    (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
    if mode == 2:
        conn.execute("PRAGMA incremental_vacuum").fetchall()
    else:
        conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _schema_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def _migrate(conn: sqlite3.Connection) -> list[str]:
    known = schema.load("sqlite")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        current = _schema_version(conn)
        if current > len(known):
            raise SchemaError(
                f"the database schema is at version {current} but this spokehub knows up to "
                f"{len(known)}; upgrade spokehub before using this database"
            )
        applied = []
        for m in known[current:]:
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (m.version, m.name)
            )
            applied.append(f"{m.version:04d}_{m.name}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return applied


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
