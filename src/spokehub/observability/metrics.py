"""Prometheus metrics: counters fed by the interceptor hooks, gauges read from the store.

Every ``Metrics`` owns its ``CollectorRegistry`` (never prometheus_client's global one), so
several apps, and tests, live in one process without clashing over metric names. Counters
and histograms count what this process saw; gauges (queue depth, pending approvals, worker
heartbeats) describe the whole database and are computed at scrape time by ``render``.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from spokehub.engine.events import EventKind
from spokehub.observability.runs import RunDirectory, RunInfo
from spokehub.runtime.interceptors import EventsCommittedInput, ExecuteStepInput, Interceptor
from spokehub.store.base import Store
from spokehub.types import RunStatus

# Waiting runs scanned per scrape for pending approvals; beyond it the gauge undercounts.
APPROVAL_SCAN_LIMIT = 10_000
# Workers whose last heartbeat is older than this are left out of the worker gauges.
WORKER_HORIZON_SECONDS = 3600.0

_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_RUN_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)


class Metrics(Interceptor):
    """The metric families, and the interceptor hooks that feed them.

    Args:
        runs: where a run's start time is found when it finishes (for the run duration).
        registry: defaults to a new ``CollectorRegistry`` of its own.
    """

    def __init__(self, runs: RunDirectory, registry: CollectorRegistry | None = None) -> None:
        self.runs = runs
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.runs_started = Counter(
            "spokehub_runs_started",
            "Runs started (including child runs).",
            ["workflow"],
            registry=r,
        )
        self.runs_finished = Counter(
            "spokehub_runs_finished",
            "Runs finished, by status.",
            ["workflow", "status"],
            registry=r,
        )
        self.step_attempts = Counter(
            "spokehub_step_attempts",
            "Step attempts executed here, by outcome (ok, error).",
            ["workflow", "step", "outcome"],
            registry=r,
        )
        self.step_retries = Counter(
            "spokehub_step_retries", "Step retries scheduled.", ["workflow", "step"], registry=r
        )
        self.step_duration = Histogram(
            "spokehub_step_duration_seconds",
            "Duration of step attempts.",
            ["workflow", "step"],
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.run_duration = Histogram(
            "spokehub_run_duration_seconds",
            "Duration of runs from start to finish, waits included.",
            ["workflow", "status"],
            buckets=_RUN_BUCKETS,
            registry=r,
        )
        self.queue_runs = Gauge(
            "spokehub_queue_runs", "Runs per queue and status.", ["queue", "status"], registry=r
        )
        self.queue_oldest = Gauge(
            "spokehub_queue_oldest_pending_age_seconds",
            "Age of the oldest pending run in the queue.",
            ["queue"],
            registry=r,
        )
        self.approvals_pending = Gauge(
            "spokehub_approvals_pending",
            "Approvals that waiting runs wait for.",
            ["workflow"],
            registry=r,
        )
        self.worker_heartbeat_age = Gauge(
            "spokehub_worker_heartbeat_age_seconds",
            "Seconds since the worker's last heartbeat.",
            ["worker", "state"],
            registry=r,
        )
        self.worker_active_runs = Gauge(
            "spokehub_worker_active_runs", "Runs the worker drives now.", ["worker"], registry=r
        )

    # -- hooks ----------------------------------------------------------------------------
    async def execute_step(
        self, input: ExecuteStepInput, call_next: Callable[[ExecuteStepInput], Awaitable[Any]]
    ) -> Any:
        ctx = input.context
        began = time.perf_counter()
        outcome = "error"
        try:
            result = await call_next(input)
            outcome = "ok"
            return result
        finally:
            self.step_duration.labels(ctx.workflow, ctx.name).observe(time.perf_counter() - began)
            self.step_attempts.labels(ctx.workflow, ctx.name, outcome).inc()

    def events_committed(self, input: EventsCommittedInput) -> None:
        wf = input.workflow
        for event in input.events:
            if event.kind is EventKind.RUN_STARTED:
                self.runs_started.labels(wf).inc()
            elif event.kind is EventKind.CHILD_STARTED:
                self.runs_started.labels(str(event.data.get("name", ""))).inc()
            elif event.kind is EventKind.RETRY_SCHEDULED:
                self.step_retries.labels(wf, str(event.data.get("name", ""))).inc()
            elif event.kind is EventKind.RUN_FINISHED:
                status = str(event.data.get("status", "unknown"))
                self.runs_finished.labels(wf, status).inc()
                observe = partial(self._observe_run, workflow=wf, status=status, at=event.at)
                self.runs.with_info(input.run_id, observe)

    def _observe_run(self, info: RunInfo, *, workflow: str, status: str, at: float) -> None:
        if info.started_at is not None:
            duration = max(0.0, at - info.started_at)
            self.run_duration.labels(workflow, status).observe(duration)

    # -- scrape ---------------------------------------------------------------------------
    async def refresh(self, store: Store, now: float) -> None:
        """Recompute the gauges from the store (all reads first, then one swap)."""
        queues = await store.queue_stats()
        waiting = await store.list_runs(status=RunStatus.WAITING, limit=APPROVAL_SCAN_LIMIT)
        workers = await store.list_workers(seen_since=now - WORKER_HORIZON_SECONDS)
        approvals: Tally[str] = Tally()
        for run in waiting:
            approvals[run.workflow] += len((run.waiting_on or {}).get("approval", []))
        for gauge in (
            self.queue_runs,
            self.queue_oldest,
            self.approvals_pending,
            self.worker_heartbeat_age,
            self.worker_active_runs,
        ):
            gauge.clear()
        for q in queues:
            for status, count in q.counts.items():
                self.queue_runs.labels(q.queue, status).set(count)
            if q.oldest_pending_at is not None:
                self.queue_oldest.labels(q.queue).set(max(0.0, now - q.oldest_pending_at))
        for workflow, count in approvals.items():
            self.approvals_pending.labels(workflow).set(count)
        for w in workers:
            self.worker_heartbeat_age.labels(w.owner, w.state).set(max(0.0, now - w.heartbeat_at))
            self.worker_active_runs.labels(w.owner).set(w.active)

    async def render(self, store: Store, now: float) -> tuple[bytes, str]:
        """The exposition text for ``GET /metrics``, and its content type."""
        await self.refresh(store, now)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
