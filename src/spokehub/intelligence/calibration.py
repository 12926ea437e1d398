"""Calibration of ``decide``: does a confidence of 0.9 mean right 9 times in 10?

Computed from recorded decisions that have a human outcome: accuracy per confidence bin, the
expected calibration error (the bins' mean |accuracy - confidence|, weighted by their size),
and the lowest threshold whose decisions at or above it meet a target precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from spokehub.intelligence.storage import DecisionRow, decisions


@dataclass(frozen=True, slots=True)
class Bin:
    low: float
    high: float
    count: int
    confidence: float  # mean confidence in the bin
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "count": self.count,
            "confidence": round(self.confidence, 6),
            "accuracy": round(self.accuracy, 6),
        }


@dataclass(frozen=True, slots=True)
class Calibration:
    """The report of ``calibrate``."""

    workflow: str
    decisions: int  # with a human outcome
    accuracy: float
    ece: float
    bins: list[Bin]
    target_precision: float
    threshold: float | None  # None: no threshold reaches the target
    coverage: float  # the share of decisions at or above that threshold
    by_method: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "decisions": self.decisions,
            "accuracy": round(self.accuracy, 6),
            "ece": round(self.ece, 6),
            "bins": [b.to_dict() for b in self.bins],
            "target_precision": self.target_precision,
            "suggested_threshold": self.threshold,
            "coverage": round(self.coverage, 6),
            "by_method": self.by_method,
        }


def calibrate(
    workflow: str,
    rows: Sequence[DecisionRow],
    *,
    bins: int = 10,
    target_precision: float = 0.95,
) -> Calibration:
    """Calibration figures of the decisions in ``rows`` that have an outcome."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    if not 0 < target_precision <= 1:
        raise ValueError("target_precision is a fraction in (0, 1]")
    judged = [(r.confidence, r.label == r.outcome, r.method) for r in rows if r.outcome]
    n = len(judged)
    table: list[Bin] = []
    ece = 0.0
    for i in range(bins):
        low, high = i / bins, (i + 1) / bins
        inside = [(c, ok) for c, ok, _ in judged if low <= c < high or (i == bins - 1 and c == 1)]
        if not inside:
            continue
        conf = sum(c for c, _ in inside) / len(inside)
        acc = sum(1 for _, ok in inside if ok) / len(inside)
        table.append(Bin(low, high, len(inside), conf, acc))
        ece += len(inside) / n * abs(acc - conf)
    threshold, coverage = _threshold(judged, target_precision)
    methods: dict[str, int] = {}
    for _, _, method in judged:
        methods[method] = methods.get(method, 0) + 1
    return Calibration(
        workflow=workflow,
        decisions=n,
        accuracy=sum(1 for _, ok, _ in judged if ok) / n if n else 0.0,
        ece=ece,
        bins=table,
        target_precision=target_precision,
        threshold=threshold,
        coverage=coverage,
        by_method=methods,
    )


def _threshold(judged: list[tuple[float, bool, str]], target: float) -> tuple[float | None, float]:
    """The lowest recorded confidence t such that decisions with confidence >= t are right at
    least ``target`` of the time (the most automation that keeps the precision)."""
    if not judged:
        return None, 0.0
    ordered = sorted(judged, key=lambda j: -j[0])
    best: tuple[float | None, float] = (None, 0.0)
    right = 0
    for i, (conf, ok, _) in enumerate(ordered, start=1):
        right += ok
        # Only cut between distinct confidences: a threshold keeps all ties or none.
        if i < len(ordered) and ordered[i][0] == conf:
            continue
        if right / i >= target:
            best = (conf, i / len(ordered))
    return best


async def calibration(
    store: Any, workflow: str, *, name: str | None = None, bins: int = 10, target: float = 0.95
) -> Calibration:
    """Read ``workflow``'s recorded decisions from ``store`` and calibrate them."""
    rows = await store.transact(lambda tx: decisions(tx, workflow, name=name), write=False)
    return calibrate(workflow, rows, bins=bins, target_precision=target)
