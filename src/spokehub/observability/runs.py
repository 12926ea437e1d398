"""What observers need to know about a run that its later activations do not carry.

A run executes in several activations, maybe on several workers and after restarts, yet its
spans must share one trace and its duration is measured from its start. Both facts live in
the run's first ledger event (``run_started``: its time and the recorded ``trace`` carrier).
The directory keeps them per run id: learned for free when this process started the run,
otherwise read once from the store and cached until the run finishes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from spokehub.engine.events import Event, EventKind
from spokehub.errors import SpokehubError
from spokehub.runtime.interceptors import ActivateRunInput, EventsCommittedInput, Interceptor
from spokehub.store.base import Store

log = logging.getLogger("spokehub.observability")
V = TypeVar("V")

CACHE_SIZE = 10_000  # runs remembered per process; a forgotten one is read again when needed

# Run id -> trace id of every run any directory in this process knows, for log lines written
# by workflow code outside a step (no span is current there).
_TRACE_IDS: OrderedDict[str, str] = OrderedDict()


def known_trace_id(run_id: str) -> str | None:
    """The trace id of a run this process has seen, if it has."""
    return _TRACE_IDS.get(run_id)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The trace a run belongs to and when it started (its clock's seconds)."""

    run_id: str
    trace: Mapping[str, str]  # W3C carrier: traceparent (and tracestate)
    started_at: float | None
    recorded: bool  # False when the trace was derived, not recorded at start

    @property
    def trace_id(self) -> str:
        return self.trace["traceparent"].split("-")[1]


def derived_carrier(run_id: str) -> dict[str, str]:
    """A stable trace for a run that recorded none (started without tracing, or forked).

    Derived from the run id, so every activation on every worker still agrees on it.
    """
    digest = hashlib.sha256(f"spokehub-run:{run_id}".encode()).hexdigest()
    return {"traceparent": f"00-{digest[:32]}-{digest[32:48]}-01"}


def info_from_started(run_id: str, event: Event) -> RunInfo | None:
    """The run's info from its ``run_started`` event, or None if that event has no trace."""
    trace = event.data.get("trace")
    if not isinstance(trace, dict) or "traceparent" not in trace:
        return None
    carrier = {str(k): str(v) for k, v in trace.items()}
    return RunInfo(run_id, carrier, event.at, recorded=True)


def _put(known: OrderedDict[str, V], key: str, value: V, size: int) -> None:
    known[key] = value
    known.move_to_end(key)
    while len(known) > size:
        known.popitem(last=False)


class RunDirectory(Interceptor):
    """Run id -> ``RunInfo``; bounded, fed by committed events and by store reads.

    It is an interceptor itself, placed before the observers that use it, so a run started
    by this process is known before anything else observes its first event.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.store: Store | None = None
        self._size = size
        self._known: OrderedDict[str, RunInfo] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    async def activate_run(
        self, input: ActivateRunInput, call_next: Callable[[ActivateRunInput], Awaitable[None]]
    ) -> None:
        # The claimed ledger starts with run_started: learn the run's trace from it, so this
        # activation's spans and log lines carry it without reading the store. A run with no
        # recorded trace (a child joins its parent's) is left to ``resolve``.
        first = input.events[0] if input.events else None
        if first is not None and first.kind is EventKind.RUN_STARTED:
            info = info_from_started(input.run_id, first)
            if info is not None:
                self.remember(info)
        await call_next(input)

    def events_committed(self, input: EventsCommittedInput) -> None:
        first = input.events[0] if input.events else None
        if first is None or first.kind is not EventKind.RUN_STARTED:
            return
        info = info_from_started(input.run_id, first) or RunInfo(
            input.run_id, derived_carrier(input.run_id), first.at, recorded=False
        )
        self.remember(info)

    def remember(self, info: RunInfo) -> None:
        _put(self._known, info.run_id, info, self._size)
        _put(_TRACE_IDS, info.run_id, info.trace_id, CACHE_SIZE)

    async def resolve(self, run_id: str) -> RunInfo:
        """The run's info; reads the store when it is not cached (never raises)."""
        info = self._known.get(run_id)
        if info is None:
            try:
                info = await self._read(run_id, depth=0)
            except Exception:  # an observer must not fail the step it observes
                log.exception(
                    "run %s: cannot read its trace; using one derived from its id", run_id
                )
                info = RunInfo(run_id, derived_carrier(run_id), None, recorded=False)
            self.remember(info)
        return info

    async def _read(self, run_id: str, depth: int) -> RunInfo:
        if self.store is None:
            raise SpokehubError("no store to read runs from: call obs.instrument(client)")
        events = await self.store.events(run_id)
        first = events[0] if events and events[0].kind is EventKind.RUN_STARTED else None
        started_at = first.at if first is not None else None
        info = info_from_started(run_id, first) if first is not None else None
        if info is not None:
            return info
        run = await self.store.get_run(run_id)
        started_at = started_at if started_at is not None else run.created_at
        if run.parent_id is not None and depth < 32:  # a child run joins its parent's trace
            parent = self._known.get(run.parent_id) or await self._read(run.parent_id, depth + 1)
            return RunInfo(run_id, parent.trace, started_at, recorded=parent.recorded)
        return RunInfo(run_id, derived_carrier(run_id), started_at, recorded=False)

    def with_info(self, run_id: str, use: Callable[[RunInfo], None]) -> None:
        """Call ``use(info)`` now if the run is cached, else once it has been read.

        For synchronous observers (``events_committed``) that need what only the store knows.
        """
        info = self._known.get(run_id)
        if info is not None:
            use(info)
            return
        task = asyncio.get_running_loop().create_task(self._later(run_id, use))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _later(self, run_id: str, use: Callable[[RunInfo], None]) -> None:
        try:
            use(await self.resolve(run_id))
        except Exception:
            log.exception("run %s: observer failed", run_id)

    async def settle(self) -> None:
        """Wait for the observations still waiting on a store read (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks)
