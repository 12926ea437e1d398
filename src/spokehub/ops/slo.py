"""Service levels per workflow: latency percentiles, error rate and retry rate, against targets.

The window is over ``finished_at``: a run counts once it has finished, and its duration is
``finished_at - created_at`` (queue time included: what the caller waited for). Definitions:

- ``error_rate`` = failed runs / finished runs (cancelled runs count as finished, not failed).
- ``retry_rate`` = retries / step attempts of those runs: the share of step attempts that
  failed and were tried again (``retry_scheduled`` / ``step_started`` ledger events).
- percentiles use the nearest-rank method over the window's durations.

Targets come from a TOML file, one table per workflow, every key optional::

    [slo.order_saga]
    p95_seconds = 30
    p99_seconds = 60
    error_rate = 0.01
    retry_rate = 0.1

Each measure with a target is green below ``AMBER_FROM`` (80%) of it, amber from 80% up to the
target, red above it. A workflow's status is its worst measure's; ``none`` when it has no
target, ``no_data`` when no run finished in the window.
"""

from __future__ import annotations

import math
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from spokehub.runtime.client import Client
from spokehub.store.base import Tx

__all__ = [
    "AMBER_FROM",
    "Measure",
    "Rag",
    "SloTarget",
    "WorkflowSlo",
    "load_targets",
    "parse_targets",
    "percentile",
    "rag",
    "slo_report",
]

AMBER_FROM = 0.8


class Rag(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    NONE = "none"  # no target set
    NO_DATA = "no_data"  # a target, but no finished run in the window

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Rag.NONE: 0, Rag.NO_DATA: 1, Rag.GREEN: 2, Rag.AMBER: 3, Rag.RED: 4}


@dataclass(frozen=True, slots=True, kw_only=True)
class SloTarget:
    """Upper bounds for one workflow; None leaves a measure without a target."""

    p50_seconds: float | None = None
    p95_seconds: float | None = None
    p99_seconds: float | None = None
    error_rate: float | None = None
    retry_rate: float | None = None


_TARGET_KEYS = tuple(f.name for f in fields(SloTarget))


@dataclass(frozen=True, slots=True)
class Measure:
    """One measured value beside its target, with its RAG status."""

    name: str
    value: float | None
    target: float | None
    status: Rag


@dataclass(frozen=True, slots=True)
class WorkflowSlo:
    workflow: str
    finished: int
    completed: int
    failed: int
    cancelled: int
    in_flight: int
    step_attempts: int
    retries: int
    measures: tuple[Measure, ...] = field(default_factory=tuple)

    @property
    def status(self) -> Rag:
        return max((m.status for m in self.measures), key=lambda s: s.rank, default=Rag.NONE)

    def measure(self, name: str) -> Measure:
        return next(m for m in self.measures if m.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "status": self.status.value,
            "finished": self.finished,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "in_flight": self.in_flight,
            "step_attempts": self.step_attempts,
            "retries": self.retries,
            "measures": {
                m.name: {"value": m.value, "target": m.target, "status": m.status.value}
                for m in self.measures
            },
        }


def parse_targets(data: dict[str, Any]) -> dict[str, SloTarget]:
    """Targets from parsed TOML (``{"slo": {workflow: {key: number}}}``).

    Raises:
        ValueError: naming the workflow and key that are wrong, and the keys allowed.
    """
    tables = data.get("slo", {})
    if not isinstance(tables, dict):
        raise ValueError("[slo] must be a table of workflow tables, e.g. [slo.order_saga]")
    targets = {}
    for workflow, table in tables.items():
        if not isinstance(table, dict):
            raise ValueError(f"slo.{workflow} must be a table, e.g. [slo.{workflow}]")
        unknown = sorted(set(table) - set(_TARGET_KEYS))
        if unknown:
            raise ValueError(
                f"slo.{workflow}: unknown key(s) {unknown}; use {', '.join(_TARGET_KEYS)}"
            )
        for key, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"slo.{workflow}.{key} must be a number >= 0, got {value!r}")
        targets[workflow] = SloTarget(**{k: float(v) for k, v in table.items()})
    return targets


def load_targets(path: str | Path) -> dict[str, SloTarget]:
    """Read SLO targets from a TOML file (see the module docstring for the format)."""
    with open(path, "rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return parse_targets(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def rag(value: float | None, target: float | None) -> Rag:
    if target is None:
        return Rag.NONE
    if value is None:
        return Rag.NO_DATA
    if value > target:
        return Rag.RED
    if target > 0 and value >= AMBER_FROM * target:
        return Rag.AMBER
    return Rag.GREEN


@dataclass(slots=True)
class _Tally:
    durations: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    in_flight: int = 0
    attempts: int = 0
    retries: int = 0


def _read(tx: Tx, since: float, until: float) -> dict[str, _Tally]:
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    finished = tx.execute(
        "SELECT workflow, status, finished_at - created_at FROM runs "
        "WHERE finished_at IS NOT NULL AND finished_at >= ? AND finished_at <= ?",
        (since, until),
    )
    for workflow, status, took in finished.fetchall():
        tally = tallies[workflow]
        tally.durations.append(float(took))
        tally.statuses[status] += 1
    active = tx.execute(
        "SELECT workflow, COUNT(*) FROM runs WHERE finished_at IS NULL GROUP BY workflow"
    )
    for workflow, count in active.fetchall():
        tallies[workflow].in_flight = int(count)
    events = tx.execute(
        "SELECT r.workflow, e.kind, COUNT(*) FROM events e JOIN runs r ON r.id = e.run_id "
        "WHERE r.finished_at IS NOT NULL AND r.finished_at >= ? AND r.finished_at <= ? "
        "AND e.kind IN ('step_started', 'retry_scheduled') GROUP BY r.workflow, e.kind",
        (since, until),
    )
    for workflow, kind, count in events.fetchall():
        if kind == "step_started":
            tallies[workflow].attempts = int(count)
        else:
            tallies[workflow].retries = int(count)
    return tallies


def _summarise(workflow: str, tally: _Tally, target: SloTarget) -> WorkflowSlo:
    finished = len(tally.durations)
    failed = tally.statuses.get("failed", 0)
    values: dict[str, float | None] = {
        "p50_seconds": percentile(tally.durations, 50),
        "p95_seconds": percentile(tally.durations, 95),
        "p99_seconds": percentile(tally.durations, 99),
        "error_rate": failed / finished if finished else None,
        "retry_rate": tally.retries / tally.attempts if tally.attempts else None,
    }
    if finished and not tally.attempts:
        values["retry_rate"] = 0.0  # runs without steps retried nothing
    measures = tuple(
        Measure(key, values[key], getattr(target, key), rag(values[key], getattr(target, key)))
        for key in _TARGET_KEYS
    )
    return WorkflowSlo(
        workflow=workflow,
        finished=finished,
        completed=tally.statuses.get("completed", 0),
        failed=failed,
        cancelled=tally.statuses.get("cancelled", 0),
        in_flight=tally.in_flight,
        step_attempts=tally.attempts,
        retries=tally.retries,
        measures=measures,
    )


async def slo_report(
    client: Client,
    targets: dict[str, SloTarget] | None = None,
    *,
    window: float = 86_400.0,
    now: float | None = None,
) -> list[WorkflowSlo]:
    """Each workflow seen in the window (or with a target), sorted by name.

    Args:
        targets: per workflow name; workflows without one are reported with status ``none``.
        window: seconds back from ``now`` (default one day).
        now: the end of the window (default the client's clock).
    """
    if window <= 0:
        raise ValueError(f"the SLO window must be positive seconds, got {window}")
    until = client.clock.now() if now is None else now
    since = until - window
    await client.ensure_schema()
    tallies = await client.store.transact(lambda tx: _read(tx, since, until), write=False)
    targets = targets or {}
    names = sorted(set(tallies) | set(targets))
    return [_summarise(n, tallies.get(n, _Tally()), targets.get(n, SloTarget())) for n in names]
