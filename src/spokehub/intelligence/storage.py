"""The SQL of LLM steps' own tables (migration ``NNNN_llm.sql``): spend, cache, rate windows
and decisions. Each function takes a transaction (``Store.transact``) and plain values.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from spokehub.store.base import Tx


def utc_day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRow:
    run_id: str | None
    workflow: str | None
    seq: int | None
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    cache_hit: bool
    at: float


def add_usage(tx: Tx, row: UsageRow) -> None:
    tx.execute(
        "INSERT INTO llm_usage (run_id, workflow, seq, provider, model, prompt_tokens, "
        "completion_tokens, cost, cache_hit, at, day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.run_id,
            row.workflow,
            row.seq,
            row.provider,
            row.model,
            row.prompt_tokens,
            row.completion_tokens,
            row.cost,
            1 if row.cache_hit else 0,
            row.at,
            utc_day(row.at),
        ),
    )


def spent(tx: Tx, *, run_id: str | None, workflow: str | None, day: str) -> tuple[float, float]:
    """(USD spent by the run, USD spent by the workflow on ``day``)."""
    by_run = 0.0
    if run_id is not None:
        row = tx.execute("SELECT SUM(cost) FROM llm_usage WHERE run_id = ?", (run_id,)).fetchone()
        by_run = float(row[0] or 0.0)
    by_day = 0.0
    if workflow is not None:
        row = tx.execute(
            "SELECT SUM(cost) FROM llm_usage WHERE workflow = ? AND day = ?", (workflow, day)
        ).fetchone()
        by_day = float(row[0] or 0.0)
    return by_run, by_day


def cache_get(tx: Tx, key: str, now: float) -> dict[str, Any] | None:
    row = tx.execute(
        "SELECT response FROM llm_cache WHERE key = ? AND expires_at > ?", (key, now)
    ).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def cache_put(tx: Tx, key: str, response: dict[str, Any], now: float, ttl: float) -> None:
    text = json.dumps(response, separators=(",", ":"))
    tx.execute("DELETE FROM llm_cache WHERE key = ?", (key,))
    tx.execute(
        "INSERT INTO llm_cache (key, response, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (key, text, now, now + ttl),
    )


def take_slot(
    tx: Tx,
    *,
    provider: str,
    window: int,
    tokens: int,
    max_requests: int | None,
    max_tokens: int | None,
) -> bool:
    """Count one request of ``tokens`` in the window if both limits allow it.

    A request alone in its window always passes, however many tokens it needs.
    """
    tx.execute(
        "INSERT INTO llm_rate (provider, window_start, requests, tokens) VALUES (?, ?, 0, 0) "
        "ON CONFLICT (provider, window_start) DO NOTHING",
        (provider, window),
    )
    sql = "UPDATE llm_rate SET requests = requests + 1, tokens = tokens + ? "
    sql += "WHERE provider = ? AND window_start = ?"
    params: list[Any] = [tokens, provider, window]
    if max_requests is not None:
        sql += " AND requests < ?"
        params.append(max_requests)
    if max_tokens is not None:
        sql += " AND (requests = 0 OR tokens + ? <= ?)"
        params += [tokens, max_tokens]
    cur = tx.execute(sql, params)
    if cur.rowcount == 1:
        # Old windows are of no use to anyone; the table stays a few rows long.
        tx.execute(
            "DELETE FROM llm_rate WHERE provider = ? AND window_start < ?", (provider, window - 1)
        )
        return True
    return False


def adjust_tokens(tx: Tx, *, provider: str, window: int, delta: int) -> None:
    """Replace a window's estimated tokens by the reported ones once a call has answered."""
    tx.execute(
        "UPDATE llm_rate SET tokens = tokens + ? WHERE provider = ? AND window_start = ?",
        (delta, provider, window),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRow:
    run_id: str
    seq: int
    workflow: str
    name: str
    label: str
    confidence: float
    method: str
    routed: bool
    outcome: str | None
    decided_by: str | None
    at: float


def put_decision(tx: Tx, row: DecisionRow) -> None:
    """Insert or replace (a step retried after a crash writes the same row again)."""
    tx.execute("DELETE FROM llm_decisions WHERE run_id = ? AND seq = ?", (row.run_id, row.seq))
    tx.execute(
        "INSERT INTO llm_decisions (run_id, seq, workflow, name, label, confidence, method, "
        "routed, outcome, decided_by, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.run_id,
            row.seq,
            row.workflow,
            row.name,
            row.label,
            row.confidence,
            row.method,
            1 if row.routed else 0,
            row.outcome,
            row.decided_by,
            row.at,
        ),
    )


def decisions(tx: Tx, workflow: str, *, name: str | None = None) -> list[DecisionRow]:
    sql = (
        "SELECT run_id, seq, workflow, name, label, confidence, method, routed, outcome, "
        "decided_by, at FROM llm_decisions WHERE workflow = ?"
    )
    params: list[Any] = [workflow]
    if name is not None:
        sql += " AND name = ?"
        params.append(name)
    rows = tx.execute(sql + " ORDER BY at, run_id, seq", params).fetchall()
    return [
        DecisionRow(
            run_id=r[0],
            seq=int(r[1]),
            workflow=r[2],
            name=r[3],
            label=r[4],
            confidence=float(r[5]),
            method=r[6],
            routed=bool(r[7]),
            outcome=r[8],
            decided_by=r[9],
            at=float(r[10]),
        )
        for r in rows
    ]


def usage_rows(
    tx: Tx, *, since: float, workflow: str | None = None, run_id: str | None = None
) -> list[UsageRow]:
    sql = (
        "SELECT run_id, workflow, seq, provider, model, prompt_tokens, completion_tokens, "
        "cost, cache_hit, at FROM llm_usage WHERE at >= ?"
    )
    params: list[Any] = [since]
    if workflow is not None:
        sql += " AND workflow = ?"
        params.append(workflow)
    if run_id is not None:
        sql += " AND run_id = ?"
        params.append(run_id)
    rows = tx.execute(sql + " ORDER BY at", params).fetchall()
    return [
        UsageRow(
            run_id=r[0],
            workflow=r[1],
            seq=r[2],
            provider=r[3],
            model=r[4],
            prompt_tokens=int(r[5]),
            completion_tokens=int(r[6]),
            cost=float(r[7]),
            cache_hit=bool(r[8]),
            at=float(r[9]),
        )
        for r in rows
    ]


def wall_clock() -> float:
    """Rate-limit windows follow the machine's clock, as the provider's limits do."""
    return time.time()


@dataclass(frozen=True, slots=True)
class UsageTotal:
    workflow: str | None
    provider: str
    model: str
    cache_hit: bool
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float


def usage_totals(tx: Tx) -> list[UsageTotal]:
    """All-time spend grouped by workflow, provider, model and cache hit (for metrics)."""
    rows = tx.execute(
        "SELECT workflow, provider, model, cache_hit, COUNT(*), SUM(prompt_tokens), "
        "SUM(completion_tokens), SUM(cost) FROM llm_usage "
        "GROUP BY workflow, provider, model, cache_hit"
    ).fetchall()
    return [
        UsageTotal(r[0], r[1], r[2], bool(r[3]), int(r[4]), int(r[5]), int(r[6]), float(r[7]))
        for r in rows
    ]
