"""The SQL shared by the SQLite and PostgreSQL stores.

Every operation here runs on the store's database thread with a DB-API connection whose
``execute`` takes ``?`` placeholders (the PostgreSQL store wraps psycopg to translate them).
The SQL keeps to what both engines speak: ``ON CONFLICT``, ``RETURNING``, ``CASE``, no
booleans (flags are integers) and no engine-specific functions. What differs per engine
(connecting, locking the rows a claim picks, schema bookkeeping, compaction, wake-up
notifications) is a handful of hooks the subclasses fill in.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from spokehub.config import Settings
from spokehub.engine.events import Event, EventKind, upgrade
from spokehub.errors import (
    ApprovalClosed,
    InvalidRunState,
    LeaseLost,
    RunIdConflict,
    RunNotFound,
    SchemaError,
)
from spokehub.store import isolation, redaction, schema
from spokehub.store.approvals import count_vote, use_link
from spokehub.store.base import (
    ApprovalVote,
    Claimed,
    Flush,
    FlushResult,
    InboxItem,
    NewRun,
    PruneStats,
    QueueLimits,
    QueueStats,
    RunRecord,
    StartResult,
    T,
    Tx,
    VoteResult,
    WorkerInfo,
)
from spokehub.store.claims import Admission, Candidate, ClaimRequest, Counts
from spokehub.store.crypto import PayloadCipher, open_text
from spokehub.store.executor import Executor
from spokehub.store.fleet import list_workers, queue_stats, report_worker
from spokehub.store.rows import (
    inbox,
    next_wake,
    prune,
    renew,
    run_record,
    running_owners,
    status_of,
)
from spokehub.types import JSON, RunStatus

_RUN_COLUMNS = (
    "id, workflow, version, queue, status, priority, input, input_blob, input_hash, result, "
    "result_blob, error, parent_id, root_id, created_at, updated_at, finished_at, wake_at, "
    "waiting_on, lease_owner, lease_expires, lease_epoch, cancel_requested, wakeups, recoveries, "
    "concurrency_key, started_at"
)
_FINISHED = ("completed", "failed", "cancelled")
Conn = Any  # a DB-API connection taking ``?`` placeholders


EventSink = Callable[[Any, str, Sequence[Event]], None]


class RelationalStore:
    """The verbs of ``Store`` in SQL; a subclass connects and fills in the hooks."""

    dialect: ClassVar[str]
    # Appended to the queries that pick runs to claim, so concurrent claimers skip each
    # other's rows instead of queueing behind them (PostgreSQL); SQLite has one writer.
    lock_rows: ClassVar[str] = ""
    integrity_errors: ClassVar[tuple[type[Exception], ...]] = ()
    url: str
    _x: Executor[Any]
    _settings: Settings

    async def close(self) -> None:
        self._x.close()

    # -- schema -----------------------------------------------------------------------------
    async def migrate(self) -> list[str]:
        _ = self._cipher  # a bad SPOKEHUB_ENCRYPTION_KEYS is refused before anything runs
        return await self._x.run("alone", self._migrate)

    async def schema_version(self) -> int:
        return await self._x.run("read", self._schema_version)

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
        limits: Mapping[str, QueueLimits] | None = None,
        slots: Mapping[str, int] | None = None,
        max_recoveries: int | None = None,
        isolation: int = 0,
    ) -> list[Claimed]:
        if limit <= 0 or not queues or not workflows:
            return []
        request = ClaimRequest(
            owner=owner,
            queues=tuple(queues),
            workflows=tuple(workflows),
            limit=limit,
            now=now,
            lease_seconds=lease_seconds,
            root_id=root_id,
            dead=tuple(dead_owners),
            limits={q: lim for q, lim in (limits or {}).items() if q in queues and lim.limited},
            slots=dict(slots or {}),
            max_recoveries=max_recoveries,
            isolation=isolation,
        )
        return await self._x.run("write", self._claim, request)

    async def strike(
        self, owner: str, run_id: str, epoch: int, now: float, max_recoveries: int | None
    ) -> bool:
        return await self._x.run(
            "write",
            lambda conn: isolation.strike(
                self,
                conn,
                owner=owner,
                run_id=run_id,
                epoch=epoch,
                now=now,
                max_recoveries=max_recoveries,
            ),
        )

    async def flush(self, flush: Flush, *, direct: bool = False) -> FlushResult:
        return await self._x.run("write", self._flush, flush, direct=direct)

    async def renew(self, owner: str, leases: dict[str, int], until: float) -> set[str]:
        if not leases:
            return set()
        return await self._x.run("write", renew, owner, dict(leases), until)

    async def release(self, owner: str, leases: dict[str, int], now: float) -> None:
        if leases:
            await self._x.run("write", self._release, owner, dict(leases), now)

    async def running_owners(self) -> list[str]:
        return await self._x.run("read", running_owners)

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
        return await self._x.run("read", inbox, run_id, self._cipher)

    async def next_wake(self, *, queues: Sequence[str], workflows: Sequence[str]) -> float | None:
        return await self._x.run("read", next_wake, tuple(queues), tuple(workflows))

    async def send_signal(self, run_id: str, name: str, payload: JSON, now: float) -> int:
        return await self._x.run("write", self._send, run_id, "signal", name, payload, now)

    async def decide_approval(self, run_id: str, vote: ApprovalVote, now: float) -> VoteResult:
        return await self._x.run("write", self._decide, run_id, vote, now)

    async def request_cancel(self, run_id: str, now: float) -> RunRecord:
        return await self._x.run("write", self._cancel, run_id, now)

    async def prune(self, *, finished_before: float) -> PruneStats:
        before = await self._x.run("read", self._size)
        counts = await self._x.run("write", prune, finished_before)
        await self._x.run("alone", self._compact)
        after = await self._x.run("read", self._size)
        return PruneStats(*counts, bytes_before=before, bytes_after=after)

    async def report_worker(self, info: WorkerInfo) -> None:
        await self._x.run("write", report_worker, info)

    async def list_workers(self, *, seen_since: float | None = None) -> list[WorkerInfo]:
        return await self._x.run("read", list_workers, seen_since)

    async def queue_stats(self) -> list[QueueStats]:
        return await self._x.run("read", queue_stats)

    async def transact(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        return await self._x.run("write" if write else "read", fn)

    # -- hooks for each engine (run on the database thread) -------------------------------------
    def _size(self, conn: Conn) -> int:
        """Bytes the database takes on disk."""
        raise NotImplementedError

    def _compact(self, conn: Conn) -> None:
        """Give space freed by a prune back to the operating system."""
        raise NotImplementedError

    def _schema_version(self, conn: Conn) -> int:
        raise NotImplementedError

    def _begin_migration(self, conn: Conn) -> None:
        """Open the transaction migrations run in, excluding concurrent migrators."""
        raise NotImplementedError

    def _lock_run(self, conn: Conn, run_id: str) -> None:
        """Serialise decisions on one run (SQLite has one writer already)."""

    def _lock_queue(self, conn: Conn, queue: str) -> None:
        """Serialise claims on a queue with limits, so counts taken here stay true."""

    def _notify(self, conn: Conn, queue: str) -> None:
        """Tell idle workers (in other processes) that ``queue`` has work; sent at commit."""

    def _tables(self, conn: Conn) -> list[str]:
        """The tables of this database (for ``db copy``)."""
        raise NotImplementedError

    def _copy_rows(
        self, conn: Conn, table: str, columns: Sequence[str], rows: Sequence[Any]
    ) -> None:
        marks = ",".join("?" * len(columns))
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", [tuple(r) for r in rows]
        )

    def _after_copy(self, conn: Conn) -> None:
        """Bring id generators past the copied ids."""

    def _migrate(self, conn: Conn) -> list[str]:
        known = schema.load(self.dialect)
        self._begin_migration(conn)
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            current = self._schema_version(conn)
            if current > len(known):
                raise SchemaError(
                    f"the database schema is at version {current} but this spokehub knows up "
                    f"to {len(known)}; upgrade spokehub before using this database"
                )
            applied = []
            for m in known[current:]:
                for statement in schema.statements(m.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.name, time.time()),
                )
                applied.append(f"{m.version:04d}_{m.name}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return applied

    # -- operations (run on the database thread) --------------------------------------------
    @functools.cached_property
    def _cipher(self) -> PayloadCipher | None:
        """Set when ``encryption_keys`` are configured: payloads are sealed at rest."""
        return PayloadCipher.from_setting(self._settings.encryption_keys)

    def _seal(self, text: str) -> str:
        return text if self._cipher is None else self._cipher.seal(text)

    def seal_text(self, text: str) -> str:
        """``text`` encrypted at rest when keys are configured (for features' own secrets)."""
        return self._seal(text)

    def open_text(self, text: str) -> str:
        """The inverse of ``seal_text``; plain text passes through."""
        return open_text(self._cipher, text)

    def _payload(self, conn: Conn, value: JSON) -> tuple[str | None, str | None]:
        """Encode a JSON value; large ones go to the blob table once, by content hash."""
        text = redaction.dumps(value, separators=(",", ":"))
        cipher = self._cipher
        if len(text) <= self._settings.blob_threshold:
            return (text if cipher is None else cipher.seal(text)), None
        if cipher is None:
            digest, data = "sha256:" + hashlib.sha256(text.encode()).hexdigest(), text
        else:
            digest, data = cipher.address(text), cipher.seal(text)
        conn.execute(
            "INSERT INTO blobs (hash, data, size, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (hash) DO NOTHING",
            (digest, data, len(text), time.time()),
        )
        return None, digest

    def _insert_events(self, conn: Conn, run_id: str, events: Sequence[Event]) -> None:
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
        except self.integrity_errors:
            raise LeaseLost(
                f"run {run_id!r}: ledger position already written; another worker owns it"
            ) from None
        for sink in self.event_sinks:
            sink(conn, run_id, events)

    @property
    def event_sinks(self) -> list[EventSink]:
        """Called with (connection, run id, events) in the transaction that writes them."""
        sinks: list[EventSink] | None = self.__dict__.get("_event_sinks")
        if sinks is None:
            sinks = self.__dict__["_event_sinks"] = []
        return sinks

    def add_event_sink(self, sink: EventSink) -> None:
        """Write something in the same transaction as every ledger write (an outbox).

        The sink runs on the database thread; an error in it fails the transaction, so what it
        writes and the ledger events commit together or not at all.
        """
        if sink not in self.event_sinks:
            self.event_sinks.append(sink)

    def _insert_new(self, conn: Conn, new: NewRun, now: float) -> bool:
        """Insert a run with its first events; False when its id exists already."""
        data, blob = self._payload(conn, new.input)
        claimed = new.claim_by is not None
        cur = conn.execute(
            "INSERT INTO runs (id, workflow, version, queue, status, priority, input, input_blob, "
            "input_hash, parent_id, root_id, created_at, updated_at, lease_owner, lease_expires, "
            "lease_epoch, concurrency_key, started_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING",
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
                new.concurrency_key,
                now if claimed else None,
            ),
        )
        if cur.rowcount != 1:
            return False
        if not claimed:
            self._notify(conn, new.queue)
        events = new.events or (
            Event(
                0,
                EventKind.RUN_STARTED,
                now,
                data={"workflow": new.workflow, "queue": new.queue, "parent": new.parent_id},
            ),
        )
        self._insert_events(conn, new.id, events)
        return True

    def _insert_fresh(self, conn: Conn, new: NewRun, now: float) -> RunRecord:
        if not self._insert_new(conn, new, now):
            raise RunIdConflict(f"a run with id {new.id!r} already exists; choose another id")
        return self._get_run(conn, new.id)

    def _start(self, conn: Conn, new: NewRun, now: float) -> StartResult:
        # Insert first: two processes starting the same id at once (PostgreSQL) both get
        # here, and ON CONFLICT lets exactly one of them create the run.
        if not self._insert_new(conn, new, now):
            existing = conn.execute(
                "SELECT workflow, input_hash FROM runs WHERE id = ?", (new.id,)
            ).fetchone()
            if existing[0] != new.workflow or existing[1] != new.input_hash:
                what = "workflow" if existing[0] != new.workflow else "input"
                raise RunIdConflict(
                    f"run {new.id!r} already exists with a different {what} "
                    f"(workflow {existing[0]!r}); starting the same run_id again must repeat "
                    "the same workflow and input: pick a new run_id for new work"
                )
            return StartResult(self._get_run(conn, new.id), created=False, epoch=None)
        run = self._get_run(conn, new.id)
        epoch = run.lease_epoch if new.claim_by else None
        return StartResult(run, created=True, epoch=epoch, events=tuple(new.events))

    def _claim(self, conn: Conn, r: ClaimRequest) -> list[Claimed]:
        for queue in sorted(r.limits):  # in one order everywhere, so claimers never deadlock
            self._lock_queue(conn, queue)
        scope, params = self._scope(r)
        isolation.recover(
            self,
            conn,
            scope=scope,
            params=params,
            dead=r.dead,
            now=r.now,
            max_recoveries=r.max_recoveries,
        )
        candidates = self._candidates(conn, r)
        if not candidates:
            return []
        admit = Admission(r, self._limit_counts(conn, r) if r.limits else None)
        chosen: list[str] = []
        for c in candidates:
            if len(chosen) >= r.limit:
                break
            if admit.take(c):
                chosen.append(c.id)
        if not chosen:
            return []
        marks = ",".join("?" * len(chosen))
        # A suspect claim marks how the run is isolated; any other claim keeps the mark 0.
        rows = conn.execute(
            "UPDATE runs SET lease_owner = ?, lease_expires = ?, lease_epoch = lease_epoch + 1, "
            "updated_at = ?, started_at = COALESCE(started_at, ?), isolation = ?, "
            f"status = 'running' WHERE id IN ({marks}) RETURNING id, lease_epoch",
            (r.owner, r.now + r.lease_seconds, r.now, r.now, r.isolation, *chosen),
        ).fetchall()
        epochs = dict(rows)
        return [  # in claim order: priority first, then age
            Claimed(self._get_run(conn, run_id), epochs[run_id], self._events(conn, run_id))
            for run_id in chosen
            if run_id in epochs
        ]

    def _scope(self, r: ClaimRequest) -> tuple[str, list[Any]]:
        q = ",".join("?" * len(r.queues))
        w = ",".join("?" * len(r.workflows))
        scope = f"queue IN ({q}) AND workflow IN ({w})"
        params: list[Any] = [*r.queues, *r.workflows]
        if r.root_id is not None:
            scope += " AND root_id = ?"
            params.append(r.root_id)
        return scope, params

    def _candidates(self, conn: Conn, r: ClaimRequest) -> list[Candidate]:
        """Ready runs in claim order: highest priority first, then oldest.

        A suspect claim (``r.isolation``) takes only suspects; any other claim never does.
        """
        scope, params = self._scope(r)
        # Runs a limit may hold back: read past them, so one busy key does not starve others.
        fetch = r.limit * 4 + 16 if r.limits else r.limit
        # Small indexed queries rather than one OR: with a deep backlog, the OR made SQLite
        # sort every ready run on each claim (milliseconds on the only DB thread).
        ready: tuple[tuple[str, tuple[Any, ...], str], ...]
        if r.isolation:
            ready = (
                ("status = 'waiting' AND wake_at <= ? AND isolation = 1", (r.now,), "wake_at"),
            )
        else:
            ready = (
                ("status = 'pending'", (), "priority DESC, created_at"),
                ("status = 'waiting' AND wake_at <= ? AND isolation <> 1", (r.now,), "wake_at"),
            )
        found: list[Candidate] = []
        for cond, extra, order in ready:
            rows = conn.execute(
                "SELECT id, queue, status, priority, created_at, recoveries, concurrency_key, "
                f"started_at FROM runs WHERE {cond} AND {scope} ORDER BY {order} LIMIT ?"
                f"{self.lock_rows}",
                (*extra, *params, fetch),
            ).fetchall()
            found += [Candidate(*row) for row in rows]
        found.sort(key=lambda c: (-c.priority, c.created_at))
        return found

    def _limit_counts(self, conn: Conn, r: ClaimRequest) -> Counts:
        queues = sorted(r.limits)
        marks = ",".join("?" * len(queues))
        counts = Counts()
        for queue, n in conn.execute(
            f"SELECT queue, COUNT(*) FROM runs WHERE status = 'running' AND queue IN ({marks}) "
            "GROUP BY queue",
            queues,
        ).fetchall():
            counts.running[queue] = n
        keyed = [q for q in queues if r.limits[q].key_concurrency is not None]
        if keyed:
            marks = ",".join("?" * len(keyed))
            for queue, key, n in conn.execute(
                "SELECT queue, concurrency_key, COUNT(*) FROM runs WHERE status IN "
                "('running', 'waiting') AND started_at IS NOT NULL AND concurrency_key IS NOT "
                f"NULL AND queue IN ({marks}) GROUP BY queue, concurrency_key",
                keyed,
            ).fetchall():
                counts.keys[(queue, key)] = n
        for queue in queues:
            rate = r.limits[queue].rate
            if rate is not None:
                (n,) = conn.execute(
                    "SELECT COUNT(*) FROM runs WHERE queue = ? AND started_at >= ?",
                    (queue, r.now - rate[1]),
                ).fetchone()
                counts.started[queue] = n
        return counts

    def _flush(self, conn: Conn, f: Flush) -> FlushResult:
        sets = ["updated_at = ?", "lease_expires = ?", "version = COALESCE(version, ?)"]
        ending = f.finish is not None or f.unload is not None  # gives the lease up
        params: list[Any] = [f.now, None if ending else f.lease_until, f.version]
        if ending:  # an activation that ends normally clears a suspicion (store/isolation.py)
            sets.append("isolation = 0")
        if f.finish is not None:
            result, result_blob = self._payload(conn, f.finish.result)
            sets += [
                "status = ?",
                "result = ?",
                "result_blob = ?",
                "error = ?",
                "finished_at = ?",
                "lease_owner = NULL",
                "wake_at = NULL",
                "waiting_on = NULL",
            ]
            error = redaction.dumps(f.finish.error) if f.finish.error is not None else None
            params += [f.finish.status.value, result, result_blob, error, f.now]
        elif f.unload is not None:
            sets += [
                "status = 'waiting'",
                "wake_at = CASE WHEN wakeups != ? THEN ? ELSE ? END",
                "waiting_on = ?",
                "lease_owner = NULL",
            ]
            params += [
                f.unload.wakeups_seen,
                f.now,
                f.unload.wake_at,
                json.dumps(f.unload.waiting_on),
            ]
        row = conn.execute(
            f"UPDATE runs SET {', '.join(sets)} WHERE id = ? AND lease_owner = ? AND "
            "lease_epoch = ? RETURNING cancel_requested, wakeups, parent_id, queue",
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
            self._wake(conn, row[2], f.now)
        if f.unload is not None:
            woken = row[1] != f.unload.wakeups_seen
            due = f.unload.wake_at is not None and f.unload.wake_at <= f.now
            if woken or due:
                self._notify(conn, row[3])
        return FlushResult(cancel_requested=bool(row[0]), wakeups=int(row[1]))

    def _send(
        self,
        conn: Conn,
        run_id: str,
        kind: str,
        name: str,
        payload: JSON,
        now: float,
    ) -> int:
        status = status_of(conn, run_id)
        if status in _FINISHED:
            raise InvalidRunState(
                f"run {run_id!r} is {status}; a {kind} can only go to a run that has not finished"
            )
        (item_id,) = conn.execute(
            "INSERT INTO inbox (run_id, kind, name, payload, created_at) VALUES (?,?,?,?,?) "
            "RETURNING id",
            (run_id, kind, name, self._seal(redaction.dumps(payload, separators=(",", ":"))), now),
        ).fetchone()
        self._wake(conn, run_id, now)
        return int(item_id)

    def _decide(self, conn: Conn, run_id: str, vote: ApprovalVote, now: float) -> VoteResult:
        self._lock_run(conn, run_id)  # concurrent votes on one run: one at a time
        status = status_of(conn, run_id)
        if vote.link_id is not None:
            use_link(conn, vote.link_id, run_id, now)
        if status in _FINISHED:
            raise ApprovalClosed(
                f"run {run_id!r} is {status}, so its approvals are closed and it waits for no "
                "approval; a decision after an approval closed is not recorded"
            )
        queued = {i.name for i in inbox(conn, run_id, self._cipher) if i.kind == "approval"}
        events = self._events(conn, run_id)
        counted = count_vote(conn, run_id, events, queued, vote, now, self._cipher)
        if counted.decision is not None:
            self._send(conn, run_id, "approval", counted.result.name, counted.decision, now)
        return counted.result

    def _cancel(self, conn: Conn, run_id: str, now: float) -> RunRecord:
        status = status_of(conn, run_id)
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
                self._wake(conn, row[1], now)
        else:
            conn.execute(
                "UPDATE runs SET cancel_requested = 1, updated_at = ? WHERE id = ?",
                (now, run_id),
            )
            self._wake(conn, run_id, now)
        return self._get_run(conn, run_id)

    def _get_run(self, conn: Conn, run_id: str) -> RunRecord:
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return run_record(conn, row, self._cipher)

    def _get_runs(self, conn: Conn, run_ids: tuple[str, ...]) -> list[RunRecord]:
        if not run_ids:
            return []
        marks = ",".join("?" * len(run_ids))
        rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN ({marks})", run_ids)
        return [run_record(conn, r, self._cipher) for r in rows.fetchall()]

    def _list_runs(
        self,
        conn: Conn,
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
        return [run_record(conn, r, self._cipher) for r in rows]

    def _wake(self, conn: Conn, run_id: str, now: float) -> None:
        row = conn.execute(
            "UPDATE runs SET wakeups = wakeups + 1, "
            "wake_at = CASE WHEN status = 'waiting' THEN ? ELSE wake_at END WHERE id = ? "
            "RETURNING queue, status",
            (now, run_id),
        ).fetchone()
        if row is not None and row[1] == "waiting":
            self._notify(conn, row[0])

    def _release(self, conn: Conn, owner: str, leases: dict[str, int], now: float) -> None:
        for run_id, epoch in leases.items():
            row = conn.execute(
                "UPDATE runs SET status = 'waiting', wake_at = ?, lease_owner = NULL, "
                "lease_expires = NULL, updated_at = ?, "
                # A suspect given back is still a suspect: its activation did not end.
                "isolation = CASE WHEN isolation = 0 THEN 0 ELSE 1 END "
                "WHERE id = ? AND lease_owner = ? AND "
                "lease_epoch = ? AND status = 'running' RETURNING queue",
                (now, now, run_id, owner, epoch),
            ).fetchone()
            if row is not None:
                self._notify(conn, row[0])

    def _events_checked(self, conn: Conn, run_id: str) -> list[Event]:
        status_of(conn, run_id)  # raises RunNotFound
        return self._events(conn, run_id)

    def _events(self, conn: Conn, run_id: str) -> list[Event]:
        rows = conn.execute(
            "SELECT e.position, e.kind, e.seq, e.at, e.v, COALESCE(e.data, b.data) "
            "FROM events e LEFT JOIN blobs b ON b.hash = e.blob "
            "WHERE e.run_id = ? ORDER BY e.position",
            (run_id,),
        ).fetchall()
        out = []
        cipher = self._cipher
        for position, kind, seq, at, v, data in rows:
            k = EventKind(kind)
            v, payload = upgrade(k, v, json.loads(open_text(cipher, data)) if data else {})
            out.append(Event(position, k, at, seq, payload, v))
        return out
