"""Predictive sync: forecast a target's next delivery from its own recent history.

A simple, explainable model until the intelligence layer's detectors land: the failure rate
of the last ``WINDOW`` deliveries, and the latency trend (the latest deliveries against the
median of the earlier ones). ``risky`` means: hold the target until it answers healthy, or
route it to an alternative endpoint it declares (see ``rollout._hold_or_route``).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WINDOW = 5
HISTORY = 20


@dataclass(frozen=True, slots=True)
class Forecast:
    risky: bool
    reason: str
    failure_rate: float = 0.0
    latency_ratio: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "risky": self.risky,
            "reason": self.reason,
            "failure_rate": round(self.failure_rate, 3),
            "latency_ratio": round(self.latency_ratio, 3),
        }


def forecast(
    history: Sequence[Mapping[str, Any]],
    *,
    max_failure_rate: float = 0.5,
    max_slowdown: float = 3.0,
) -> Forecast:
    """Judge the next delivery from ``[{ok, s}, ...]`` (oldest first)."""
    recent = list(history)[-WINDOW:]
    if len(recent) < 2:
        return Forecast(False, "not enough history to forecast")
    rate = sum(1 for h in recent if not h.get("ok")) / len(recent)
    earlier = [float(h.get("s", 0)) for h in list(history)[:-WINDOW] if h.get("ok")]
    latest = [float(h.get("s", 0)) for h in recent if h.get("ok")]
    ratio = 1.0
    if earlier and latest and statistics.median(earlier) > 0:
        ratio = statistics.median(latest) / statistics.median(earlier)
    if rate >= max_failure_rate:
        return Forecast(
            True, f"{rate:.0%} of the last {len(recent)} deliveries failed", rate, ratio
        )
    if ratio >= max_slowdown:
        return Forecast(True, f"deliveries are {ratio:.1f}x slower than before", rate, ratio)
    return Forecast(False, f"{rate:.0%} failures, latency x{ratio:.1f}", rate, ratio)


def remember(
    history: Sequence[Mapping[str, Any]], ok: bool, seconds: float
) -> list[dict[str, Any]]:
    """The history with one more delivery, bounded to the last ``HISTORY``."""
    return [*map(dict, history), {"ok": ok, "s": round(seconds, 4)}][-HISTORY:]
