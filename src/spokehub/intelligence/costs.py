"""Cost totals: a run's from its ledger (each ``llm.complete`` step records usage and cost),
and spend over time, by model and by workflow, from the ``llm_usage`` table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from spokehub.engine.events import Event, EventKind
from spokehub.intelligence.storage import UsageRow

STEP_NAME = "llm.complete"


@dataclass(frozen=True, slots=True)
class CallCost:
    """One recorded LLM call of a run."""

    seq: int
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    cache_hit: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "provider": self.provider,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
            "cache_hit": self.cache_hit,
        }


@dataclass(frozen=True, slots=True)
class RunCost:
    """The LLM calls a run's ledger records, and their totals."""

    calls: list[CallCost] = field(default_factory=list)

    @property
    def cost(self) -> float:
        return round(sum(c.cost for c in self.calls), 10)

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.calls)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.calls)

    @property
    def cache_hits(self) -> int:
        return sum(1 for c in self.calls if c.cache_hit)

    def by_seq(self) -> dict[int, CallCost]:
        return {c.seq: c for c in self.calls}

    def to_dict(self) -> dict[str, Any]:
        return {
            "cost": self.cost,
            "calls": len(self.calls),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cache_hits": self.cache_hits,
            "steps": [c.to_dict() for c in self.calls],
        }


def run_cost(events: Iterable[Event]) -> RunCost:
    """The recorded LLM calls of one run's ledger (replayed or live, each counted once)."""
    calls = []
    for e in events:
        if e.kind is not EventKind.STEP_COMPLETED or e.data.get("name") != STEP_NAME:
            continue
        result = e.data.get("result") or {}
        usage = result.get("usage") or {}
        calls.append(
            CallCost(
                seq=int(e.seq or 0),
                provider=str(result.get("provider", "")),
                model=str(result.get("model", "")),
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                cost=float(result.get("cost", 0.0)),
                cache_hit=bool(result.get("cache_hit")),
            )
        )
    return RunCost(calls)


@dataclass(frozen=True, slots=True)
class Spend:
    """Spend of a group (a day, a model, a workflow)."""

    key: str
    cost: float = 0.0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0

    def add(self, row: UsageRow) -> Spend:
        return Spend(
            self.key,
            round(self.cost + row.cost, 10),
            self.calls + 1,
            self.prompt_tokens + row.prompt_tokens,
            self.completion_tokens + row.completion_tokens,
            self.cache_hits + (1 if row.cache_hit else 0),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "cost": self.cost,
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cache_hits": self.cache_hits,
        }


@dataclass(frozen=True, slots=True)
class SpendReport:
    """Spend since a moment: in total, per UTC day, per model and per workflow."""

    since: float
    total: Spend
    by_day: list[Spend]
    by_model: list[Spend]
    by_workflow: list[Spend]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "total": self.total.to_dict(),
            "by_day": [s.to_dict() for s in self.by_day],
            "by_model": [s.to_dict() for s in self.by_model],
            "by_workflow": [s.to_dict() for s in self.by_workflow],
        }


def spend_report(rows: Sequence[UsageRow], *, since: float) -> SpendReport:
    total = Spend("total")
    days: dict[str, Spend] = {}
    models: dict[str, Spend] = {}
    workflows: dict[str, Spend] = {}
    for row in rows:
        total = total.add(row)
        day = datetime.fromtimestamp(row.at, UTC).strftime("%Y-%m-%d")
        model = f"{row.provider}:{row.model}"
        wf = row.workflow or "(outside runs)"
        for table, key in ((days, day), (models, model), (workflows, wf)):
            table[key] = table.get(key, Spend(key)).add(row)
    return SpendReport(
        since=since,
        total=total,
        by_day=[days[k] for k in sorted(days)],
        by_model=sorted(models.values(), key=lambda s: -s.cost),
        by_workflow=sorted(workflows.values(), key=lambda s: -s.cost),
    )
