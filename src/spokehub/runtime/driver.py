"""Executing one run: replay its history, run its code until it waits or ends, commit.

One driver lives as long as one activation of a run on a worker. It replays the history
(recorded results are fed back in ledger order), runs new steps, records what happens in a
buffer of ledger events and commits that buffer:

* before a step's result is handed to the workflow code (write-ahead: a result the code has
  seen is never lost, so a recorded step never runs again);
* when every path of the code waits on something that is not due soon: the run is unloaded
  (status ``waiting`` with the time it should wake) and the driver ends;
* when the code returns or raises: compensations run (saga), then the run is finished.

Every commit is fenced by the lease epoch, so a worker that lost its lease commits nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from spokehub.engine.approvals import approval_due, approval_tick
from spokehub.engine.events import CURRENT_VERSION, CallKind, Event, EventKind
from spokehub.engine.history import History, Replay
from spokehub.engine.serde import input_hash
from spokehub.errors import (
    Cancelled,
    InvalidRunState,
    LeaseLost,
    NonDeterminismError,
    RunNotFound,
    SerializationError,
    SpokehubError,
    StoreUnavailable,
    error_info,
)
from spokehub.runtime.annotations import bind_annotations
from spokehub.runtime.context import StepContext, WorkflowContext, _client
from spokehub.runtime.definitions import REGISTRY, ChildSpec, StepDefinition, StepSpec, Workflow
from spokehub.runtime.driver_state import Wait, _Pending, _retry_after
from spokehub.runtime.instance import AsyncInstance, Instance, SyncInstance
from spokehub.runtime.interceptors import (
    ActivateRunInput,
    EventsCommittedInput,
    chain,
    notify_committed,
)
from spokehub.runtime.outcomes import error_dict, run_compensation, value_of
from spokehub.runtime.primitives import ApprovalSpec, SignalSpec, TimerSpec
from spokehub.runtime.scope import Call, Scope
from spokehub.runtime.steps import AttemptOutcome, run_attempt
from spokehub.store import redaction
from spokehub.store.base import Claimed, Finish, Flush, NewRun, Unload
from spokehub.types import RunStatus

if TYPE_CHECKING:
    from spokehub.runtime.worker import Worker

log = logging.getLogger("spokehub.driver")


class RunDriver:
    def __init__(self, worker: Worker, claimed: Claimed) -> None:
        self.worker = worker
        self.store = worker.client.store
        self.clock = worker.client.clock
        self.run = claimed.run
        self.epoch = claimed.epoch
        self.history = History(claimed.events)
        self.all_events: list[Event] = list(claimed.events)
        self.position = self.history.next_position
        self.pending = _Pending()
        self.wakeups_seen = claimed.run.wakeups
        self.cancel_requested = claimed.run.cancel_requested
        self.defn: Workflow[..., Any] = REGISTRY.workflow(claimed.run.workflow)
        self.steps: dict[asyncio.Task[AttemptOutcome], tuple[Call, int]] = {}
        self.waits: dict[int, Wait] = {}
        self.ready: deque[tuple[Call, Event]] = deque()
        self.instance: Instance | None = None
        self.abandoned: list[str] = []  # children whose parent stopped waiting for them
        # A recorded cancellation that took effect before an earlier-recorded result was
        # delivered (see _acknowledge_cancel); replay applies it at that point.
        self.early_cancel = next(
            (
                e
                for e in claimed.events
                if e.kind is EventKind.CANCEL_REQUESTED and e.data.get("before") is not None
            ),
            None,
        )

    # -- ledger and commits -----------------------------------------------------------------
    def append(self, kind: EventKind, seq: int | None = None, **data: Any) -> Event:
        if redaction.filters_active():  # secrets resolved: what observers see is masked too
            data = redaction.filter_value(data)
        event = Event(self.position, kind, self.clock.now(), seq, data, CURRENT_VERSION[kind])
        self.position += 1
        self.pending.events.append(event)
        self.all_events.append(event)
        return event

    async def commit(self, *, finish: Finish | None = None, unload: Unload | None = None) -> None:
        p, self.pending = self.pending, _Pending()
        now = self.clock.now()
        result = await self.store.flush(
            Flush(
                run_id=self.run.id,
                owner=self.worker.owner,
                epoch=self.epoch,
                now=now,
                lease_until=now + self.worker.lease_seconds,
                events=p.events,
                consumed=p.consumed,
                children=p.children,
                version=self.defn.version,
                finish=finish,
                unload=unload,
            ),
            # A worker driving this run alone has nothing else to do while it commits.
            direct=len(self.worker.active) <= 1 and not self.steps,
        )
        self.cancel_requested = result.cancel_requested
        if finish is not None:
            self.worker.finished(
                dataclasses.replace(
                    self.run,
                    status=finish.status,
                    result=finish.result,
                    error=finish.error,
                    finished_at=now,
                    updated_at=now,
                    lease_owner=None,
                    lease_expires=None,
                    wake_at=None,
                    waiting_on=None,
                )
            )
        if p.events and self.worker.client.interceptors:
            notify_committed(
                self.worker.client.interceptors,
                EventsCommittedInput(run_id=self.run.id, workflow=self.defn.name, events=p.events),
            )
        if p.children:
            self.worker.notify()

    # -- the activation ---------------------------------------------------------------------
    async def execute(self) -> None:
        _client.set(self.worker.client)  # this task's context: its steps inherit it
        interceptors = self.worker.client.interceptors
        if not interceptors:
            await self._activation(None)
            return
        start = ActivateRunInput(
            run_id=self.run.id,
            workflow=self.defn.name,
            worker=self.worker.owner,
            events=tuple(self.history.events),
        )
        await chain(interceptors, "activate_run", self._activation)(start)

    async def _activation(self, _: ActivateRunInput | None) -> None:
        try:
            if self.history.first(EventKind.RUN_FINISHED) is not None:
                return
            started = self.history.first(EventKind.COMPENSATION_STARTED)
            if started is not None:
                await self._compensate_and_finish(started.data)
                return
            await self._drive()
        except LeaseLost as exc:
            log.warning("run %s: %s; leaving it to its new owner", self.run.id, exc)
        except StoreUnavailable as exc:
            log.warning(
                "run %s: %s; handing the run back once the database answers", self.run.id, exc
            )
            await self._give_back()
        finally:
            for task in self.steps:
                task.cancel()
            if self.instance is not None:
                self.instance.close()

    async def _give_back(self) -> None:
        """After a lost commit, release the run (due now, no recovery counted) for any worker
        to resume from its ledger; whatever the lost commit did or did not write is in it.

        Tried until the lease would have run out; past that, other workers recover the run.
        """
        for task in self.steps:
            task.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.worker.lease_seconds
        delay = 0.1
        while True:
            try:
                await self.store.release(
                    self.worker.owner, {self.run.id: self.epoch}, self.clock.now()
                )
                return
            except StoreUnavailable:
                if loop.time() + delay > deadline:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _describe(self) -> str:
        return (
            f"run {self.run.id!r} of workflow {self.defn.name!r} (recorded version "
            f"{self.run.version or 'unknown'}, running version {self.defn.version})"
        )

    def _make_instance(self) -> Instance:
        replay = Replay(self.history, self._describe())
        scope = Scope(replay=replay, is_async=self.defn.is_async)
        args, kwargs = self.defn.codec.call_args(self.run.input)
        wctx = WorkflowContext(self.run.id, self.defn.name, self.defn.version, self.run.parent_id)
        cls = AsyncInstance if self.defn.is_async else SyncInstance
        return cls(self.defn.fn, args, kwargs, scope, wctx)

    async def _drive(self) -> None:
        try:
            inst = self.instance = self._make_instance()
        except SerializationError as exc:  # stored input no longer fits the signature
            await self._finish(False, exc)
            return
        scope = inst.scope
        while True:
            inst.advance()
            if scope.fatal is None:
                for call in scope.take_new():
                    self._on_new_call(call)
                if self._feed_replay(scope):
                    continue  # a recorded cancellation: let the code see it, as live
            if scope.fatal is not None:
                await self._fail_fatal(scope.fatal)
                return
            if self._acknowledge_cancel(scope, inst):
                continue
            if self.ready:
                # One resolution per advance, in ledger order, live exactly as in replay:
                # waking several tasks at once lets a task that spawns subtasks number its
                # next calls after another task's, which a one-at-a-time replay reverses.
                call, event = self.ready.popleft()
                self._deliver(call, event)
                continue
            if inst.done and not self.steps:
                break
            if await self._progress(scope):
                continue
            if inst.done:
                break
            await self._unload(scope)
            return
        ok, value = inst.outcome()
        await self._finish(ok, value)

    def _acknowledge_cancel(self, scope: Scope, inst: Instance) -> bool:
        """Record a requested cancel; from then on every call of the code raises ``Cancelled``.

        It is checked before each delivery, so no call starts once the cancel is known.
        Resolutions already recorded but not yet handed to the code (the result of the step
        that was in flight when the cancel came) are delivered after it: ``before`` names the
        first of them, so replay applies the cancellation at the same point. Returns True
        when it recorded the cancel.
        """
        if not self.cancel_requested or scope.cancelled or inst.done or scope.replay.pending:
            return False
        before = self.ready[0][1].position if self.ready else None
        self.append(EventKind.CANCEL_REQUESTED, before=before)
        self._cancel_waits(scope)
        return True

    def _feed_replay(self, scope: Scope) -> bool:
        """Queue the next recorded resolution; it must belong to a call the code has made.

        Returns True when it replayed a cancellation, which the code must see at once.
        """
        replay = scope.replay
        if not replay.pending:
            return False
        event = replay.pending[0]
        if not scope.cancelled and self._cancel_applies_before(replay.pending, event):
            self._cancel_waits(scope)
            return True
        if event.kind is not EventKind.CANCEL_REQUESTED:
            assert event.seq is not None
            if event.seq not in scope.calls:
                scope.fatal = replay.stuck(set(scope.calls))
                return False
        replay.pending.popleft()
        if event.seq is None:  # a cancellation
            self._cancel_waits(scope)
            return True
        self.waits.pop(event.seq, None)
        self.ready.append((scope.calls[event.seq], event))
        return False

    # -- calls ------------------------------------------------------------------------------
    def _on_new_call(self, call: Call) -> None:
        record = call.record
        if record is not None and record.resolution is not None:
            return  # replay will feed the recorded resolution in ledger order
        now = self.clock.now()
        if call.kind is CallKind.STEP:
            if record is None:
                self._start_attempt(call, 1)
            else:
                retry = record.last(EventKind.RETRY_SCHEDULED)
                due = retry.data["retry_at"] if retry else now
                self.waits[call.seq] = Wait(call, due, attempt=record.attempts_made + 1)
        elif call.kind is CallKind.TIMER:
            spec: TimerSpec = call.spec
            if record is None:
                due = spec.until if spec.until is not None else now + spec.seconds
                self.append(EventKind.TIMER_SET, call.seq, name="sleep", due=due)
            else:
                due = record.events[0].data["due"]
            self.waits[call.seq] = Wait(call, due)
        elif call.kind in (CallKind.SIGNAL, CallKind.APPROVAL):
            self._on_wait_call(call, now)
        elif call.kind is CallKind.CHILD:
            self._on_child_call(call)

    def _on_wait_call(self, call: Call, now: float) -> None:
        record = call.record
        if record is not None:
            due = record.events[0].data.get("deadline")
            if call.kind is CallKind.APPROVAL:
                due = approval_due(self._call_events(call.seq))
            self.waits[call.seq] = Wait(call, due)
            return
        spec: SignalSpec | ApprovalSpec = call.spec
        deadline = now + spec.timeout if spec.timeout is not None else None
        if isinstance(spec, ApprovalSpec):
            data = spec.rules.to_data()
            self.append(
                EventKind.APPROVAL_REQUESTED,
                call.seq,
                subject=spec.subject,
                deadline=deadline,
                **data,
            )
            self.waits[call.seq] = Wait(call, approval_due(self._call_events(call.seq)))
            return
        self.append(EventKind.SIGNAL_WAITING, call.seq, name=spec.name, deadline=deadline)
        self.waits[call.seq] = Wait(call, deadline)

    def _on_child_call(self, call: Call) -> None:
        record = call.record
        if record is not None:
            child_id = record.events[0].data["child_id"]
        else:
            spec: ChildSpec = call.spec
            wf = spec.workflow
            child_id = wf.run_id or f"{self.run.id}.{call.seq}"
            self.append(EventKind.CHILD_STARTED, call.seq, name=wf.name, child_id=child_id)
            self.pending.children.append(
                NewRun(
                    id=child_id,
                    workflow=wf.name,
                    version=wf.version,
                    queue=wf.queue,
                    input=spec.input,
                    input_hash=input_hash(spec.input),
                    parent_id=self.run.id,
                    root_id=self.run.root_id,
                    priority=wf.priority,
                    concurrency_key=wf.concurrency_key,
                )
            )
        self.waits[call.seq] = Wait(call, None, child_id=child_id)

    # -- steps ------------------------------------------------------------------------------
    def _start_attempt(self, call: Call, attempt: int) -> None:
        if self.worker.draining:  # the worker is stopping: the next worker starts this step
            self.waits[call.seq] = Wait(call, self.clock.now(), attempt=attempt)
            return
        spec: StepSpec = call.spec
        st = spec.step
        args, kwargs = st.codec.call_args(spec.args)
        ctx = StepContext(
            run_id=self.run.id,
            workflow=self.defn.name,
            step=call.seq,
            name=st.name,
            attempt=attempt,
            idempotency_key=f"{self.run.id}:{call.seq}",
            labels=st.labels,
        )
        self.append(EventKind.STEP_STARTED, call.seq, name=st.name, attempt=attempt)
        # The name is what the heartbeat's watchdog reports if this step blocks the loop.
        name = f"step {st.name!r} (run {self.run.id!r}, call #{call.seq}, attempt {attempt})"
        task = asyncio.create_task(self._attempt(st, args, kwargs, ctx), name=name)
        self.steps[task] = (call, attempt)

    async def _attempt(
        self,
        st: StepDefinition[..., Any],
        args: list[Any],
        kwargs: dict[str, Any],
        ctx: StepContext,
    ) -> AttemptOutcome:
        started = self.clock.now()
        # Interceptors of this attempt may annotate it; the notes ride on the event that
        # records the attempt's outcome (one ledger row per attempt, not one more per note).
        notes: list[dict[str, Any]] = []
        bind_annotations(lambda kind, data: notes.append({"kind": kind.value, "data": data}))
        try:
            value = await run_attempt(
                st.fn,
                args,
                kwargs,
                is_async=st.is_async,
                timeout=st.timeout,
                ctx=ctx,
                interceptors=self.worker.client.interceptors,
            )
            value = st.codec.encode_result(value)
        except Exception as exc:
            return AttemptOutcome(False, exc, started, self.clock.now(), tuple(notes))
        return AttemptOutcome(True, value, started, self.clock.now(), tuple(notes))

    def _on_attempt_done(self, call: Call, attempt: int, out: AttemptOutcome) -> bool:
        """Record an attempt's outcome; True when it must be committed before delivery."""
        spec: StepSpec = call.spec
        st = spec.step
        timing: dict[str, Any] = {
            "started_at": out.started,
            "duration": round(out.finished - out.started, 6),
        }
        if out.notes:
            timing["notes"] = list(out.notes)
        if out.ok:
            extra: dict[str, Any] = {}
            if st.compensate is not None:
                extra = {"compensate": True, "args": spec.args, "ref": st.ref}
            event = self.append(
                EventKind.STEP_COMPLETED,
                call.seq,
                name=st.name,
                attempt=attempt,
                result=out.value,
                **timing,
                **extra,
            )
            self.ready.append((call, event))
            return True
        exc: Exception = out.value
        # An error may say it is final (a policy denial): retrying cannot change the outcome.
        retryable = not isinstance(exc, SerializationError) and getattr(exc, "retryable", True)
        if retryable and st.retry.retries(exc, attempt):
            delay = st.retry.delay(attempt, seed=f"{self.run.id}:{call.seq}")
            retry_at = out.finished + max(delay, _retry_after(exc))
            self.append(
                EventKind.RETRY_SCHEDULED,
                call.seq,
                name=st.name,
                attempt=attempt,
                error=error_dict(exc),
                retry_at=retry_at,
                **timing,
            )
            self.waits[call.seq] = Wait(call, retry_at, attempt=attempt + 1)
            return False
        event = self.append(
            EventKind.STEP_FAILED,
            call.seq,
            name=st.name,
            attempts=attempt,
            error=error_dict(exc),
            **timing,
        )
        self.ready.append((call, event))
        return True

    # -- waiting ----------------------------------------------------------------------------
    async def _progress(self, scope: Scope) -> bool:
        """Make something happen without unloading; False when the run should unload."""
        if self.worker.draining and not self.steps:
            return False  # give the run back: it unloads, due now, for another worker
        # A decision that closed an approval before its deadline beats the expiry timer.
        if self._inbox_wait_due() and await self._poll_external(scope):
            return True
        if self._fire_due(scope):
            return True
        due = self._next_due()
        horizon = None if due is None else max(0.0, due - self.clock.now())
        if self.steps:
            timeout = (
                horizon if horizon is not None and horizon <= self.worker.inline_wait else None
            )
            if timeout is None and len(self.steps) == 1:
                (only,) = self.steps
                await only  # cheaper than asyncio.wait for the common, sequential case
                done = {only}
            else:
                done, _ = await asyncio.wait(
                    self.steps, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            must_commit = False
            for task in done:
                call, attempt = self.steps.pop(task)
                must_commit |= self._on_attempt_done(call, attempt, task.result())
            if must_commit:
                await self.commit()
            return True
        if await self._poll_external(scope):
            return True
        if horizon is not None and horizon <= self.worker.inline_wait:
            await asyncio.sleep(horizon)
            return True
        return False

    def _next_due(self) -> float | None:
        dues = [w.due for w in self.waits.values() if w.due is not None]
        return min(dues) if dues else None

    def _fire_due(self, scope: Scope) -> bool:
        now = self.clock.now()
        fired = False
        for seq, wait in sorted(self.waits.items()):
            if wait.due is None or wait.due > now:
                continue
            call = wait.call
            if call.kind is CallKind.STEP and self.worker.draining:
                continue
            del self.waits[seq]
            fired = True
            if call.kind is CallKind.STEP:
                self._start_attempt(call, wait.attempt)
            elif call.kind is CallKind.TIMER:
                self.ready.append((call, self.append(EventKind.TIMER_FIRED, seq, name="sleep")))
            elif call.kind is CallKind.APPROVAL:
                self._tick_approval(call, now)
            else:
                event = self.append(
                    EventKind.WAIT_TIMED_OUT, seq, call=call.kind.value, name=call.name
                )
                self.ready.append((call, event))
        return fired

    def _call_events(self, seq: int) -> list[Event]:
        return [e for e in self.all_events if e.seq == seq]

    def _tick_approval(self, call: Call, now: float) -> None:
        """Reminders, escalation and expiry of an approval: ledger events, then re-armed."""
        tick = approval_tick(self._call_events(call.seq), now)
        last = None
        for kind, data in tick.events:
            last = self.append(kind, call.seq, **data)
        if tick.resolves and last is not None:
            self.ready.append((call, last))
        else:
            self.waits[call.seq] = Wait(call, tick.due)

    def _inbox_wait_due(self) -> bool:
        now = self.clock.now()
        return any(
            w.due is not None and w.due <= now and w.call.kind is CallKind.APPROVAL
            for w in self.waits.values()
        )

    async def _poll_external(self, scope: Scope) -> bool:
        """Look in the store for signals, decisions, finished children and cancellation."""
        run = await self.store.get_run(self.run.id)
        self.wakeups_seen = run.wakeups
        self.cancel_requested = run.cancel_requested
        if run.cancel_requested and not scope.cancelled:
            return True
        delivered = False
        inbox_waits = [
            w for w in self.waits.values() if w.call.kind in (CallKind.SIGNAL, CallKind.APPROVAL)
        ]
        if inbox_waits:
            items = await self.store.inbox(self.run.id)
            taken: set[int] = set(self.pending.consumed)
            for wait in sorted(inbox_waits, key=lambda w: w.call.seq):
                kind = "signal" if wait.call.kind is CallKind.SIGNAL else "approval"
                item = next(
                    (
                        i
                        for i in items
                        if i.kind == kind and i.name == wait.call.name and i.id not in taken
                    ),
                    None,
                )
                if item is None:
                    continue
                taken.add(item.id)
                self.pending.consumed.append(item.id)
                del self.waits[wait.call.seq]
                if kind == "signal":
                    event = self.append(
                        EventKind.SIGNAL_RECEIVED,
                        wait.call.seq,
                        name=item.name,
                        payload=item.payload,
                        inbox_id=item.id,
                    )
                else:
                    event = self.append(
                        EventKind.APPROVAL_DECIDED,
                        wait.call.seq,
                        name=item.name,
                        inbox_id=item.id,
                        **item.payload,
                    )
                self.ready.append((wait.call, event))
                delivered = True
        child_waits = {w.child_id: w for w in self.waits.values() if w.child_id is not None}
        if child_waits:
            for child in await self.store.get_runs(list(child_waits)):
                if not child.status.finished:
                    continue
                wait = child_waits[child.id]
                del self.waits[wait.call.seq]
                event = self.append(
                    EventKind.CHILD_FINISHED,
                    wait.call.seq,
                    name=wait.call.name,
                    child_id=child.id,
                    status=child.status.value,
                    result=child.result,
                    error=child.error,
                )
                self.ready.append((wait.call, event))
                delivered = True
        return delivered

    def _cancel_applies_before(self, pending: deque[Event], event: Event) -> bool:
        """True when the recorded cancellation was applied before ``event`` was delivered
        (it came while that call was in flight); it is taken out of the queue then."""
        early = self.early_cancel
        if early is None or event.position < early.data["before"]:
            return False
        self.early_cancel = None
        pending.remove(early)
        return True

    def _cancel_waits(self, scope: Scope) -> None:
        scope.cancelled = True
        for seq, wait in sorted(self.waits.items()):
            if wait.child_id is not None:
                self.abandoned.append(wait.child_id)
            if not wait.call.waiter.done():
                wait.call.waiter.set_exception(Cancelled())
            del self.waits[seq]

    async def _unload(self, scope: Scope) -> None:
        if not self.waits:
            await self._finish(
                False,
                SpokehubError(
                    "the workflow is blocked on something that is not a spokehub call (an "
                    "asyncio future, lock or event?); workflow code may only wait on steps, "
                    "sleep, wait_for_signal, approval and child workflows"
                ),
            )
            return
        waiting_on: dict[str, list[Any]] = {}
        for wait in sorted(self.waits.values(), key=lambda w: w.call.seq):
            kind = wait.call.kind.value if wait.call.kind is not CallKind.STEP else "retry"
            entry: dict[str, Any] = {"seq": wait.call.seq, "name": wait.call.name}
            if wait.due is not None:
                entry["due"] = wait.due
            if wait.child_id is not None:
                entry["child_id"] = wait.child_id
            waiting_on.setdefault(kind, []).append(entry)
        await self.commit(
            unload=Unload(
                wake_at=self._next_due(), waiting_on=waiting_on, wakeups_seen=self.wakeups_seen
            )
        )

    # -- delivering results into workflow code ------------------------------------------------
    def _deliver(self, call: Call, event: Event) -> None:
        waiter = call.waiter
        if waiter.done():
            return
        try:
            value = value_of(call, event)
        except BaseException as exc:  # the outcome is an error the workflow code must see
            waiter.set_exception(exc)
        else:
            waiter.set_result(value)

    # -- the end of a run -------------------------------------------------------------------
    async def _fail_fatal(self, exc: NonDeterminismError) -> None:
        """Stop a run whose code no longer matches its history; no compensation runs."""
        log.error("%s", exc)
        error = error_info(exc)
        self.append(EventKind.RUN_FINISHED, status=RunStatus.FAILED.value, error=error)
        await self.commit(finish=Finish(RunStatus.FAILED, error=error))

    async def _finish(self, ok: bool, value: Any) -> None:
        while self.steps:  # a branch still runs a step: record it, so a saga can undo it
            done, _ = await asyncio.wait(self.steps, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                call, attempt = self.steps.pop(task)
                self._on_attempt_done(call, attempt, task.result())
        if ok and self._cancel_seen():
            # The cancel was acknowledged while the last call was in flight: the run still
            # ends cancelled, and what it did is compensated.
            ok, value = False, Cancelled()
        if ok:
            try:
                result = self.defn.codec.encode_result(value)
            except SerializationError as exc:
                ok, value = False, exc
            else:
                self.append(EventKind.RUN_FINISHED, status=RunStatus.COMPLETED.value, result=result)
                await self.commit(finish=Finish(RunStatus.COMPLETED, result=result))
                return
        await self._cancel_children()
        cancelled = isinstance(value, Cancelled) or (self.cancel_requested and self._cancel_seen())
        reason: dict[str, Any] = {
            "status": (RunStatus.CANCELLED if cancelled else RunStatus.FAILED).value,
            "error": error_dict(value, with_traceback=not cancelled),
        }
        if History(self.all_events).compensable_steps():
            self.append(EventKind.COMPENSATION_STARTED, **reason)
            await self.commit()
            await self._compensate_and_finish(reason)
            return
        await self._end(reason, [])

    async def _cancel_children(self) -> None:
        """A parent that fails or is cancelled takes its unfinished children down with it."""
        children = self.abandoned + [w.child_id for w in self.waits.values() if w.child_id]
        for child_id in children:
            with contextlib.suppress(InvalidRunState, RunNotFound):
                await self.store.request_cancel(child_id, self.clock.now())
        if children:
            self.worker.notify()

    def _cancel_seen(self) -> bool:
        return any(e.kind is EventKind.CANCEL_REQUESTED for e in self.all_events)

    async def _end(self, reason: dict[str, Any], failures: list[dict[str, Any]]) -> None:
        status = RunStatus(reason["status"])
        error = dict(reason["error"])
        if failures:
            error["compensation_failures"] = failures
        self.append(EventKind.RUN_FINISHED, status=status.value, error=error)
        await self.commit(finish=Finish(status, error=error))

    async def _compensate_and_finish(self, reason: dict[str, Any]) -> None:
        """Undo completed steps newest first; each compensation is committed as it ends."""
        history = History(self.all_events)
        done = history.compensated()
        failures = [
            {"step": e.data.get("name"), "seq": e.seq, "error": e.data.get("error")}
            for e in self.all_events
            if e.kind is EventKind.COMPENSATION_RAN and not e.data.get("ok")
        ]
        for event in history.compensable_steps():
            if event.seq in done:
                continue
            ok, attempts, err = await run_compensation(
                event, self.run.id, self.defn.name, self.worker.client.interceptors
            )
            self.append(
                EventKind.COMPENSATION_RAN,
                event.seq,
                name=event.data["name"],
                ok=ok,
                attempts=attempts,
                error=err,
            )
            await self.commit()
            if not ok:
                failures.append({"step": event.data["name"], "seq": event.seq, "error": err})
        await self._end(reason, failures)
