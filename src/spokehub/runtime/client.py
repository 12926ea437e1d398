"""The embedded client: start runs, get handles, send signals and decisions, cancel, fork.

It talks to the database directly (no server in between), like DBOS's client.
Every method has an async form (``*_async``) and a sync twin that runs it to completion.
"""

from __future__ import annotations

import asyncio
import getpass
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from spokehub.config import Settings
from spokehub.engine.events import CURRENT_VERSION, Event, EventKind
from spokehub.engine.history import fork_events
from spokehub.engine.serde import input_hash, to_json
from spokehub.engine.validation import check_payload, check_run_id, check_text
from spokehub.errors import (
    ConfigurationError,
    InvalidRunState,
    ResultTimeout,
    RunCancelledError,
    RunFailed,
    SpokehubError,
)
from spokehub.runtime.clock import Clock, DatabaseClock, SystemClock
from spokehub.runtime.definitions import REGISTRY, Workflow
from spokehub.runtime.heartbeat import Heartbeats
from spokehub.runtime.interceptors import (
    EventsCommittedInput,
    Interceptor,
    StartRunInput,
    chain,
    notify_committed,
)
from spokehub.store import open_store
from spokehub.store.base import (
    ApprovalVote,
    Claimed,
    NewRun,
    PruneStats,
    RunRecord,
    StartResult,
    Store,
    VoteResult,
)
from spokehub.types import JSON, RunStatus

if TYPE_CHECKING:
    from spokehub.runtime.worker import Worker

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:
        return asyncio.run(coro)
    coro.close()
    raise SpokehubError(
        "a sync spokehub method was called from async code; await its *_async twin instead"
    )


class RunHandle(Generic[R]):
    """A run by id: its status, its result, its ledger, and cancellation."""

    def __init__(
        self,
        client: Client,
        run_id: str,
        workflow: Workflow[..., Any] | None,
        *,
        created: bool | None = None,
    ) -> None:
        self.client = client
        self.id = run_id
        self._workflow = workflow
        # Set by a start: True when this call created the run, False when the run id existed
        # (same workflow and input); None for a handle made from an id.
        self.created = created

    def __repr__(self) -> str:
        return f"<RunHandle {self.id}>"

    async def get_async(self) -> RunRecord:
        return await self.client.get_run_async(self.id)

    async def status_async(self) -> RunStatus:
        return (await self.get_async()).status

    async def result_async(self, *, timeout: float | None = None) -> R:
        """Wait for the run to finish and return its result (or raise why it did not)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while True:
            run = await self.get_async()
            if run.status.finished:
                return self._outcome(run)
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(f"run {self.id!r} is still {run.status.value} after {timeout}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.client.settings.poll_interval)

    def _outcome(self, run: RunRecord) -> R:
        if run.status is RunStatus.COMPLETED:
            wf = self._workflow or REGISTRY.workflows.get(run.workflow)
            return wf.codec.decode_result(run.result) if wf else run.result  # type: ignore[no-any-return]
        if run.status is RunStatus.CANCELLED:
            raise RunCancelledError(self.id)
        raise RunFailed(self.id, run.error)

    async def cancel_async(self) -> None:
        await self.client.cancel_async(self.id)

    async def events_async(self) -> list[Event]:
        return await self.client.events_async(self.id)

    def get(self) -> RunRecord:
        return _sync(self.get_async())

    def status(self) -> RunStatus:
        return _sync(self.status_async())

    def result(self, *, timeout: float | None = None) -> R:
        return _sync(self.result_async(timeout=timeout))

    def cancel(self) -> None:
        _sync(self.cancel_async())

    def events(self) -> list[Event]:
        return _sync(self.events_async())


def os_user() -> str:
    """The OS user, the identity of a decision or a start made without a token."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        return "unknown-user"


class Client:
    """Start and steer runs in a spokehub database.

    Args:
        database_url: overrides ``SPOKEHUB_DATABASE_URL`` (default ``.spokehub/spokehub.db``).
        settings: all settings at once (``database_url`` then must not be given).
        clock: where time comes from (tests pass ``spokehub.testing.FakeClock``).
        interceptors: hooks around step attempts, starts and committed ledger events
            (``spokehub.Interceptor``); the first is the outermost.

    Example:
        >>> client = Client("sqlite:///app.db")  # doctest: +SKIP
        >>> handle = client.start(order_saga, "order-1")
        >>> handle.result(timeout=30)
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        if settings is not None and database_url is not None:
            raise ValueError("give database_url or settings, not both")
        self.settings = settings or Settings.from_env(database_url=database_url)
        # Without a clock of the caller's, time is the database's (see DatabaseClock).
        self.clock: Clock = clock or DatabaseClock(SystemClock())
        self.interceptors: tuple[Interceptor, ...] = tuple(interceptors)
        self.store: Store = open_store(self.settings)
        self._schema_ready = False
        self._workers: weakref.WeakSet[Worker] = weakref.WeakSet()
        self._heartbeats = Heartbeats()
        # Debounce and throttle of starts (``wf.options(debounce=...)``) are the integrations
        # layer's: it plugs its implementation in here (a layer below cannot import it).
        self.start_control: Callable[..., Awaitable[RunHandle[Any]]] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    async def ensure_schema(self) -> None:
        if not self._schema_ready:
            await self.store.migrate()
            if isinstance(self.clock, DatabaseClock) and not self.clock.synced:
                await self.clock.sync(self.store.db_time)
            self._schema_ready = True

    async def close_async(self) -> None:
        self._heartbeats.close()
        await self.store.close()

    def close(self) -> None:
        _sync(self.close_async())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _notify_workers(self) -> None:
        for worker in list(self._workers):
            worker.notify()

    # -- starting runs ----------------------------------------------------------------------
    @overload
    async def start_async(
        self, wf: Workflow[P, Coroutine[Any, Any, T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> RunHandle[T]: ...
    @overload
    async def start_async(
        self, wf: Workflow[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> RunHandle[T]: ...
    async def start_async(
        self, wf: Workflow[P, Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> RunHandle[Any]:
        """Start a run of ``wf`` (idempotent by ``wf.options(run_id=...)``); return its handle.

        The run is durable when this returns: it will run to its end on some worker.
        """
        _check_workflow(wf)
        data = wf.codec.bind(args, kwargs)
        self._check_input(wf, data)
        wf.codec.call_args(data)  # against the workflow's types now, as the API does
        if wf.starts is not None:
            return await self._controlled(wf, data)
        result = await self._start(wf, data, claim_by=None)
        return RunHandle(self, result.run.id, wf, created=result.created)

    async def _controlled(self, wf: Workflow[..., Any], data: dict[str, JSON]) -> RunHandle[Any]:
        if self.start_control is None:
            raise ConfigurationError(
                f"workflow {wf.name!r} is started with debounce or throttle, which the "
                "integrations layer implements: call "
                "spokehub.integrations.starts.enable(client) first"
            )
        return await self.start_control(self, wf, data)

    async def start_now_async(
        self, wf: Workflow[..., Any], data: dict[str, JSON], *, run_id: str | None = None
    ) -> RunHandle[Any]:
        """Start at once, whatever debounce or throttle ``wf`` carries (their implementation
        calls this once it decided)."""
        result = await self._start(wf, data, claim_by=None, run_id=run_id)
        return RunHandle(self, result.run.id, wf, created=result.created)

    async def start_input_async(
        self,
        wf: Workflow[..., Any],
        data: dict[str, JSON],
        *,
        run_id: str | None = None,
        actor: str | None = None,
        started_by: str | None = None,
    ) -> RunHandle[Any]:
        """Start from a JSON object of keyword arguments (the CLI's and HTTP API's form).

        ``actor`` (a token's name, an OS user; ``started_by`` is the same) is recorded as the
        run's ``started_by``: policies see it, and an approval with ``allow_self=False``
        refuses that actor's decision.
        """
        _check_workflow(wf)
        self._check_input(wf, data)
        data = wf.codec.validate_input(data)
        who = actor or started_by
        if wf.starts is not None and run_id is None:
            return await self._controlled(wf, data)
        result = await self._start(wf, data, claim_by=None, run_id=run_id, actor=who)
        return RunHandle(self, result.run.id, wf, created=result.created)

    async def _start(
        self,
        wf: Workflow[..., Any],
        data: dict[str, JSON],
        *,
        claim_by: str | None,
        run_id: str | None = None,
        actor: str | None = None,
    ) -> StartResult:
        await self.ensure_schema()
        new_id = _new_run_id(run_id if run_id is not None else wf.run_id)

        async def start(req: StartRunInput) -> StartResult:
            # The id is fixed before the chain (a worker may already watch it); the input,
            # queue and priority are the interceptors' to change.
            now = self.clock.now()
            first: dict[str, JSON] = {"workflow": wf.name, "queue": req.queue}
            if req.trace:
                first["trace"] = dict(req.trace)
            if req.actor:
                first["started_by"] = req.actor
            started = Event(0, EventKind.RUN_STARTED, now, data=first)
            notes = tuple(
                Event(i, kind, now, data=dict(data), v=CURRENT_VERSION[kind])
                for i, (kind, data) in enumerate(req.annotations, start=1)
            )
            new = NewRun(
                id=new_id,
                workflow=wf.name,
                version=wf.version,
                queue=req.queue,
                input=req.input,
                input_hash=input_hash(req.input),
                priority=req.priority,
                concurrency_key=req.concurrency_key,
                claim_by=claim_by,
                lease_seconds=self.settings.lease_seconds,
                events=(started, *notes),
            )
            return await self.store.start(new, now)

        request = StartRunInput(
            workflow=wf.name,
            run_id=new_id,
            input=data,
            queue=wf.queue,
            priority=wf.priority,
            concurrency_key=wf.concurrency_key,
            actor=actor,
            labels=wf.labels,
        )
        result: StartResult = await chain(self.interceptors, "start_run", start)(request)
        if result.created:
            self._notify_workers()
            notify_committed(
                self.interceptors,
                EventsCommittedInput(run_id=new_id, workflow=wf.name, events=result.events),
            )
        return result

    @overload
    async def run_async(
        self, wf: Workflow[P, Coroutine[Any, Any, T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T: ...
    @overload
    async def run_async(self, wf: Workflow[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...
    async def run_async(self, wf: Workflow[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Start a run and execute it here, in this process, to its end; return its result.

        Starting and claiming the new run share one commit, and no separate worker is needed.
        """
        from spokehub.runtime.worker import Worker

        _check_workflow(wf)
        data = wf.codec.bind(args, kwargs)
        self._check_input(wf, data)
        wf.codec.call_args(data)
        run_id = _new_run_id(wf.run_id)
        worker = Worker(self, queues=[wf.queue], root_id=run_id)
        result = await self._start(wf, data, claim_by=worker.owner, run_id=run_id)
        handle: RunHandle[Any] = RunHandle(self, run_id, wf)
        if result.created and result.epoch is not None:
            worker.adopt(Claimed(result.run, result.epoch, list(result.events)))
        final = await self._drive(worker, run_id, until_waiting=False)
        return handle._outcome(final)

    async def execute_async(self, run_id: str, *, until_waiting: bool = False) -> RunRecord:
        """Drive one run (and its children) in this process until it finishes.

        With ``until_waiting`` it returns as soon as the run waits for something from outside
        (a signal, an approval) instead of waiting for it.
        """
        from spokehub.runtime.worker import Worker

        run = await self.get_run_async(run_id)
        worker = Worker(self, queues=[run.queue], root_id=run.root_id)
        return await self._drive(worker, run_id, until_waiting=until_waiting)

    async def _drive(self, worker: Worker, run_id: str, *, until_waiting: bool) -> RunRecord:
        state: dict[str, RunRecord] = {}

        def should_stop(current: RunRecord) -> bool:
            external = current.status is RunStatus.WAITING and current.wake_at is None
            return current.status.finished or (until_waiting and external)

        async def check() -> bool:
            # The end committed by this worker's own driver needs no read back.
            current = worker.watched_final or await self.get_run_async(run_id)
            state["run"] = current
            return should_stop(current)

        await worker.run(until_async=check, watch=run_id)
        return state.get("run") or await self.get_run_async(run_id)

    def _check_input(self, wf: Workflow[..., Any], data: object) -> None:
        check_payload(
            data, f"input of workflow {wf.name!r}", max_bytes=self.settings.max_input_bytes
        )

    # -- steering runs ----------------------------------------------------------------------
    def handle(self, run_id: str) -> RunHandle[Any]:
        return RunHandle(self, run_id, None)

    async def get_run_async(self, run_id: str) -> RunRecord:
        _check_id(run_id)
        await self.ensure_schema()
        return await self.store.get_run(run_id)

    async def list_runs_async(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        limit: int = 100,
        created_after: float | None = None,
        created_before: float | None = None,
        search: str | None = None,
    ) -> list[RunRecord]:
        """Newest first; ``search`` matches part of the run id, ignoring case."""
        if search is not None:
            check_text(search, "search")
        if workflow is not None:
            check_text(workflow, "workflow name")
        await self.ensure_schema()
        return await self.store.list_runs(
            status=status,
            workflow=workflow,
            limit=limit,
            created_after=created_after,
            created_before=created_before,
            search=search,
        )

    async def events_async(self, run_id: str) -> list[Event]:
        _check_id(run_id)
        await self.ensure_schema()
        return await self.store.events(run_id)

    async def send_signal_async(self, run_id: str, name: str, payload: Any = None) -> None:
        """Deliver a named message to a run; it is kept until the run waits for it."""
        if not isinstance(name, str) or not name:
            raise ValueError("a signal name is a non-empty string")
        _check_id(run_id)
        check_text(name, "signal name")
        data = to_json(payload, what="signal payload")
        check_payload(data, "signal payload", max_bytes=self.settings.max_input_bytes)
        await self.ensure_schema()
        await self.store.send_signal(run_id, name, data, self.clock.now())
        self._notify_workers()

    async def approve_async(
        self,
        run_id: str,
        *,
        name: str | None = None,
        comment: str | None = None,
        by: str | None = None,
    ) -> str:
        """Approve the run's pending approval (``name`` when it has several); returns its name.

        ``by`` defaults to the OS user; the vote counts toward the approval's quorum.
        """
        result = await self.vote_async(run_id, approved=True, name=name, comment=comment, by=by)
        return result.name

    async def reject_async(
        self,
        run_id: str,
        *,
        name: str | None = None,
        comment: str | None = None,
        by: str | None = None,
    ) -> str:
        """Reject the run's pending approval; returns its name."""
        result = await self.vote_async(run_id, approved=False, name=name, comment=comment, by=by)
        return result.name

    async def vote_async(
        self,
        run_id: str,
        *,
        approved: bool,
        name: str | None = None,
        comment: str | None = None,
        by: str | None = None,
        role: str | None = None,
        via: str = "client",
        link_id: str | None = None,
        seq: int | None = None,
    ) -> VoteResult:
        """Cast one vote as ``by`` (with ``role``) and return where the approval stands.

        Raises ``ApprovalForbidden`` (not an assignee, or self-approval), ``DuplicateVote``,
        ``ApprovalClosed`` (decided or expired already) or ``InvalidRunState``.
        """
        _check_id(run_id)
        for value, what in ((name, "approval name"), (comment, "comment"), (by, "by")):
            if value is not None:
                check_text(value, what)
        await self.ensure_schema()
        vote = ApprovalVote(
            name=name,
            by=by or os_user(),
            approved=approved,
            role=role,
            comment=comment,
            via=via,
            link_id=link_id,
            run_seq=seq,
        )
        result = await self.store.decide_approval(run_id, vote, self.clock.now())
        self._notify_workers()
        return result

    async def cancel_async(self, run_id: str) -> RunRecord:
        """Ask a run to stop; compensations of its completed steps run before it ends."""
        _check_id(run_id)
        await self.ensure_schema()
        run = await self.store.request_cancel(run_id, self.clock.now())
        self._notify_workers()
        return run

    async def fork_async(
        self, run_id: str, *, from_step: int, new_run_id: str | None = None
    ) -> RunHandle[Any]:
        """A new run with the same input and the ledger of ``run_id`` before call ``from_step``.

        Calls before ``from_step`` replay their recorded results; from ``from_step`` on the
        run executes with the code registered now.
        """
        _check_id(run_id)
        if new_run_id is not None:
            check_run_id(new_run_id, "new run id")
        await self.ensure_schema()
        if from_step < 1:
            raise ValueError("from_step counts calls from 1")
        source = await self.store.get_run(run_id)
        events = await self.store.events(run_id)
        last = max((e.seq for e in events if e.seq is not None), default=0)
        if from_step > last + 1:
            raise InvalidRunState(
                f"run {run_id!r} has {last} call(s); fork from a step between 1 and {last + 1}"
            )
        now = self.clock.now()
        new_id = new_run_id or secrets.token_hex(8)
        kept = fork_events(events, from_step, source.id, now)
        wf = REGISTRY.workflows.get(source.workflow)
        await self.store.insert_run(
            NewRun(
                id=new_id,
                workflow=source.workflow,
                version=wf.version if wf else None,
                queue=source.queue,
                input=source.input,
                input_hash=source.input_hash,
                priority=source.priority,
                events=kept,
            ),
            now,
        )
        self._notify_workers()
        return RunHandle(self, new_id, wf)

    async def prune_async(self, *, older_than: float) -> PruneStats:
        """Delete runs that finished more than ``older_than`` seconds ago; return space."""
        await self.ensure_schema()
        return await self.store.prune(finished_before=self.clock.now() - older_than)

    # -- sync twins ---------------------------------------------------------------------------
    def start(self, wf: Workflow[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> RunHandle[Any]:
        return _sync(self.start_async(wf, *args, **kwargs))

    def start_input(
        self,
        wf: Workflow[..., Any],
        data: dict[str, JSON],
        *,
        run_id: str | None = None,
        started_by: str | None = None,
    ) -> RunHandle[Any]:
        return _sync(self.start_input_async(wf, data, run_id=run_id, started_by=started_by))

    def run(self, wf: Workflow[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Any:
        return _sync(self.run_async(wf, *args, **kwargs))

    def execute(self, run_id: str, *, until_waiting: bool = False) -> RunRecord:
        return _sync(self.execute_async(run_id, until_waiting=until_waiting))

    def get_run(self, run_id: str) -> RunRecord:
        return _sync(self.get_run_async(run_id))

    def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        limit: int = 100,
        created_after: float | None = None,
        created_before: float | None = None,
        search: str | None = None,
    ) -> list[RunRecord]:
        return _sync(
            self.list_runs_async(
                status=status,
                workflow=workflow,
                limit=limit,
                created_after=created_after,
                created_before=created_before,
                search=search,
            )
        )

    def events(self, run_id: str) -> list[Event]:
        return _sync(self.events_async(run_id))

    def send_signal(self, run_id: str, name: str, payload: Any = None) -> None:
        _sync(self.send_signal_async(run_id, name, payload))

    def approve(
        self,
        run_id: str,
        *,
        name: str | None = None,
        comment: str | None = None,
        by: str | None = None,
    ) -> str:
        return _sync(self.approve_async(run_id, name=name, comment=comment, by=by))

    def reject(
        self,
        run_id: str,
        *,
        name: str | None = None,
        comment: str | None = None,
        by: str | None = None,
    ) -> str:
        return _sync(self.reject_async(run_id, name=name, comment=comment, by=by))

    def vote(
        self,
        run_id: str,
        *,
        approved: bool,
        name: str | None = None,
        comment: str | None = None,
        by: str | None = None,
        role: str | None = None,
    ) -> VoteResult:
        """Cast one vote (see ``vote_async``) and return where the approval stands."""
        return _sync(
            self.vote_async(run_id, approved=approved, name=name, comment=comment, by=by, role=role)
        )

    def cancel(self, run_id: str) -> RunRecord:
        return _sync(self.cancel_async(run_id))

    def fork(self, run_id: str, *, from_step: int, new_run_id: str | None = None) -> RunHandle[Any]:
        return _sync(self.fork_async(run_id, from_step=from_step, new_run_id=new_run_id))

    def prune(self, *, older_than: float) -> PruneStats:
        return _sync(self.prune_async(older_than=older_than))


def _new_run_id(given: str | None) -> str:
    """The id a start uses: the given one if it follows the rule (an empty id is an error,
    never a random id: two calls must give the same run), else a random one."""
    return secrets.token_hex(8) if given is None else check_run_id(given)


def _check_id(run_id: str) -> None:
    """An id to look up: any stored id is found, but NUL or invalid Unicode never reach the
    database (PostgreSQL would fail on them, SQLite would not: both refuse them here)."""
    if not isinstance(run_id, str):
        raise TypeError(f"a run id is a string, not {type(run_id).__name__}")
    check_text(run_id, "run id")


def _check_workflow(wf: object) -> None:
    if not isinstance(wf, Workflow):
        raise TypeError(f"expected a @workflow function, got {wf!r}")
