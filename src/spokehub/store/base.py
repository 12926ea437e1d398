"""The Store protocol: the verbs every backend speaks, and the records they exchange.

The backends (``sqlite.py``, ``postgres.py``) share their SQL (``relational.py`` with
``claims.py``, ``fleet.py`` and ``rows.py``). The contract suite in ``tests/store_contract.py``
runs against every backend, so a new one only has to pass it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from spokehub.engine.events import Event
from spokehub.types import JSON, RunStatus

T = TypeVar("T")


class Rows(Protocol):
    """What ``Tx.execute`` returns (a DB-API cursor)."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """A connection inside a transaction, handed to ``Store.transact`` callbacks.

    SQL uses ``?`` placeholders on every backend (the PostgreSQL store translates them), plain
    types only (TEXT, INTEGER, REAL/DOUBLE PRECISION), and ``RETURNING`` instead of lastrowid.
    """

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as stored (the ledger is read separately with ``Store.events``)."""

    id: str
    workflow: str
    version: str | None
    queue: str
    status: RunStatus
    priority: int
    input: dict[str, JSON]
    input_hash: str
    result: JSON
    error: dict[str, Any] | None
    parent_id: str | None
    root_id: str
    created_at: float
    updated_at: float
    finished_at: float | None
    wake_at: float | None
    waiting_on: dict[str, Any] | None
    lease_owner: str | None
    lease_expires: float | None
    lease_epoch: int
    cancel_requested: bool
    wakeups: int
    recoveries: int
    concurrency_key: str | None = None
    started_at: float | None = None  # first picked up by a worker

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "version": self.version,
            "queue": self.queue,
            "status": self.status.value,
            "priority": self.priority,
            "input": self.input,
            "result": self.result,
            "error": self.error,
            "parent_id": self.parent_id,
            "root_id": self.root_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
            "wake_at": self.wake_at,
            "waiting_on": self.waiting_on,
            "lease_owner": self.lease_owner,
            "cancel_requested": self.cancel_requested,
            "recoveries": self.recoveries,
            "concurrency_key": self.concurrency_key,
            "started_at": self.started_at,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRun:
    """A run to create. With ``claim_by`` the creator also takes its lease (embedded runs)."""

    id: str
    workflow: str
    version: str | None
    queue: str
    input: dict[str, JSON]
    input_hash: str
    parent_id: str | None = None
    root_id: str | None = None
    priority: int = 0
    concurrency_key: str | None = None
    claim_by: str | None = None
    lease_seconds: float = 30.0
    events: Sequence[Event] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLimits:
    """Limits a claim honours for one queue (declared with ``spokehub.Queue``).

    Attributes:
        concurrency: runs of the queue executing at once, across all workers.
        rate: at most ``rate[0]`` runs started per ``rate[1]`` seconds (first starts only).
        key_concurrency: runs in progress at once per ``concurrency_key``; a run holds its
            key from its first start until it finishes, waits included.
    """

    concurrency: int | None = None
    rate: tuple[int, float] | None = None
    key_concurrency: int | None = None

    @property
    def limited(self) -> bool:
        return (
            self.concurrency is not None
            or self.rate is not None
            or self.key_concurrency is not None
        )


@dataclass(frozen=True, slots=True)
class StartResult:
    run: RunRecord
    created: bool
    epoch: int | None  # set when the caller claimed the new run
    events: Sequence[Event] = ()  # the ledger written with a new run


@dataclass(frozen=True, slots=True)
class Claimed:
    run: RunRecord
    epoch: int
    events: list[Event]


@dataclass(frozen=True, slots=True)
class Finish:
    status: RunStatus
    result: JSON = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Unload:
    wake_at: float | None
    waiting_on: dict[str, Any]
    wakeups_seen: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Flush:
    """Everything a run's owner commits in one transaction."""

    run_id: str
    owner: str
    epoch: int
    now: float
    lease_until: float
    events: Sequence[Event] = ()
    consumed: Sequence[int] = ()
    children: Sequence[NewRun] = ()
    version: str | None = None
    finish: Finish | None = None
    unload: Unload | None = None


@dataclass(frozen=True, slots=True)
class FlushResult:
    cancel_requested: bool
    wakeups: int


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    run_id: str
    kind: str  # "signal" or "approval"
    name: str
    payload: JSON
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalVote:
    """One person's decision on an approval; the store checks it against the approval's rules.

    ``link_id`` is set when the vote comes through a signed link, which it uses up.
    """

    name: str | None
    by: str
    approved: bool
    role: str | None = None
    comment: str | None = None
    via: str = "api"
    link_id: str | None = None
    run_seq: int | None = None  # a link names the exact approval call


@dataclass(frozen=True, slots=True)
class VoteResult:
    """Where an approval stands after a vote: ``outcome`` is pending, approved or rejected."""

    run_id: str
    name: str
    seq: int
    outcome: str
    approvals: int
    quorum: int
    rejections: int

    @property
    def closed(self) -> bool:
        return self.outcome != "pending"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "name": self.name,
            "seq": self.seq,
            "outcome": self.outcome,
            "approved": self.outcome == "approved",
            "approvals": self.approvals,
            "quorum": self.quorum,
            "rejections": self.rejections,
        }


@dataclass(frozen=True, slots=True)
class PruneStats:
    runs: int
    events: int
    blobs: int
    bytes_before: int
    bytes_after: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """A worker process as it last reported itself (heartbeats update it)."""

    owner: str  # the lease owner name: host:pid:token
    name: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    active: int  # runs it drives now
    state: str  # "running", "draining" or "stopped"
    started_at: float
    heartbeat_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "queues": list(self.queues),
            "concurrency": self.concurrency,
            "active": self.active,
            "state": self.state,
            "started_at": self.started_at,
            "heartbeat_at": self.heartbeat_at,
        }


@dataclass(frozen=True, slots=True)
class QueueStats:
    """How many runs of a queue are in each status (finished ones are not counted)."""

    queue: str
    counts: dict[str, int] = field(default_factory=dict)  # status -> runs
    oldest_pending_at: float | None = None

    @property
    def depth(self) -> int:
        """Runs waiting for a worker to pick them up."""
        return self.counts.get("pending", 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "counts": dict(self.counts),
            "depth": self.depth,
            "oldest_pending_at": self.oldest_pending_at,
        }


@dataclass(slots=True)
class StoreStats:
    """Counters read from the store itself (benchmarks use ``commits``)."""

    commits: int = 0
    batches: int = 0
    operations: int = 0
    direct: int = 0  # operations run on the caller's thread (``run(direct=True)``)


class Store(Protocol):
    """What the runtime needs from a database. All verbs are coroutines; ``now`` is passed in."""

    url: str
    stats: StoreStats

    async def migrate(self) -> list[str]: ...
    async def schema_version(self) -> int: ...
    async def close(self) -> None: ...

    async def start(self, new: NewRun, now: float) -> StartResult: ...
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
        """Lease up to ``limit`` runs that are ready: new or due.

        ``limits`` are the queues' global limits, ``slots`` how many more runs of each queue
        this worker may take. First, runs abandoned by a dead owner (lease expired, or an
        owner in ``dead_owners``) become suspects (``store/isolation.py``); a claim with
        ``isolation`` 2 (a child process) or 3 (alone in this process) takes only suspects,
        any other claim never does. A run charged ``max_recoveries`` strikes is
        dead-lettered: finished as failed with the reason.
        """
        ...

    async def strike(
        self, owner: str, run_id: str, epoch: int, now: float, max_recoveries: int | None
    ) -> bool:
        """The child process running ``run_id`` alone died while its supervisor ``owner``
        lives: charge the run a strike (and dead-letter it at ``max_recoveries``)."""
        ...

    async def flush(self, flush: Flush, *, direct: bool = False) -> FlushResult:
        """Commit a run's events and state, fenced by its lease.

        ``direct`` says the caller has nothing else to do meanwhile, so a backend may run the
        commit on the caller's thread when it is otherwise idle.
        """
        ...

    async def renew(self, owner: str, leases: dict[str, int], until: float) -> set[str]: ...
    async def db_time(self) -> float:
        """The database server's clock (epoch seconds): due times are decided by it."""
        ...

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(queue)`` when another process makes work ready; returns unsubscribe.

        The callback runs on a store thread: hand it to an event loop thread-safely.
        """
        ...

    async def release(self, owner: str, leases: dict[str, int], now: float) -> None:
        """Give runs back (a draining worker): due at once, not counted as recoveries."""
        ...

    async def running_owners(self) -> list[str]: ...

    async def get_run(self, run_id: str) -> RunRecord: ...
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
        """Newest first. ``search`` matches part of the run id, ignoring case."""
        ...

    async def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]: ...
    async def events(self, run_id: str) -> list[Event]: ...
    async def inbox(self, run_id: str) -> list[InboxItem]: ...
    async def next_wake(
        self, *, queues: Sequence[str], workflows: Sequence[str]
    ) -> float | None: ...

    async def send_signal(self, run_id: str, name: str, payload: JSON, now: float) -> int: ...
    async def decide_approval(self, run_id: str, vote: ApprovalVote, now: float) -> VoteResult:
        """Record a vote; closing the approval queues the decision for the run (atomically)."""
        ...

    async def request_cancel(self, run_id: str, now: float) -> RunRecord: ...
    async def insert_run(self, new: NewRun, now: float) -> RunRecord: ...
    async def prune(self, *, finished_before: float) -> PruneStats: ...

    async def report_worker(self, info: WorkerInfo) -> None:
        """Insert or update a worker's row (at start, on heartbeat, at stop)."""
        ...

    async def list_workers(self, *, seen_since: float | None = None) -> list[WorkerInfo]: ...
    async def queue_stats(self) -> list[QueueStats]: ...

    async def transact(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        """Run ``fn(tx)`` in one transaction on the store's connection (its own thread).

        For features with tables of their own (API tokens, webhook deliveries): their SQL lives
        with the feature, their tables in the numbered migrations of every dialect.
        """
        ...
