"""The PostgreSQL benchmark runs end to end in its quick mode and reports sane figures.

Speed is never asserted here (it depends on the machine and its load); only that every
section ran, measured something, that the runs it measured completed with the right results,
and that it dropped the database it created.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.pg import BASE_URL, require_postgres

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "pg_bench.py"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    require_postgres()
    out = tmp_path_factory.mktemp("pg_bench") / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out), "--url", BASE_URL],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout, json.loads(out.read_text())


def test_prints_every_section(quick_run: tuple[str, dict[str, Any]]) -> None:
    stdout, _ = quick_run
    for label in (
        "raw commits/s, 1 client(s)",
        "raw commits/s, 8 client(s)",
        "sequential: store commits/step",
        "sequential: CPU ms/step",
        "1 worker: steps/s",
        "4 workers: steps/s / raw 8-client commits/s",
        "4 workers: burst enqueue -> start latency p99",
        "4 workers: lone start -> start latency p99",
    ):
        assert label in stdout, f"{label!r} missing from the report"


def test_raw_rates_are_measured(quick_run: tuple[str, dict[str, Any]]) -> None:
    for when in ("before", "after"):
        for clients in ("1", "8"):
            raw = quick_run[1]["raw"][when][clients]
            assert raw["clients"] == int(clients)
            assert raw["commits"] > 0
            assert raw["commits_per_s"] > 0


def test_sequential_runs_commit_every_step(quick_run: tuple[str, dict[str, Any]]) -> None:
    seq = quick_run[1]["sequential"]
    assert seq["steps"] == seq["runs"] * 10 > 0
    # One run at a time cannot share commits: every step's result is committed on its own.
    assert seq["store_commits"] >= seq["steps"]
    # PostgreSQL's own count agrees, give or take the per-process overhead the benchmark
    # subtracts (a warm-up process's transactions, which differ by a read or two).
    assert abs(seq["pg_xacts"] - seq["store_commits"]) <= seq["runs"]
    assert seq["cpu_s"] > 0
    assert seq["wall_s"] > 0


def test_worker_rounds_complete_every_run(quick_run: tuple[str, dict[str, Any]]) -> None:
    rounds = quick_run[1]["workers"]
    assert set(rounds) == {"1", "4"}
    for workers, measured in rounds.items():
        for r in measured:
            assert r["workers"] == int(workers) == len(r["worker_stats"])
            assert r["results_ok"]
            assert r["steps"] == r["runs"] * 10
            assert sum(r["activations"] for r in r["worker_stats"]) >= r["runs"]
            assert r["window_s"] >= r["exec_s"] > 0
            assert 0 <= r["latency_ms"]["p50"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]
            assert r["store_commits"] > 0
            assert r["worker_cpu_s"] > 0


def test_table_has_a_verdict_for_every_target(quick_run: tuple[str, dict[str, Any]]) -> None:
    with_target = [row for row in quick_run[1]["table"] if row["target"] != "-"]
    assert len(with_target) == 4
    assert all(isinstance(row["ok"], bool) for row in with_target)


def test_the_benchmark_database_is_dropped(quick_run: tuple[str, dict[str, Any]]) -> None:
    import psycopg

    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s",
            (quick_run[1]["machine"]["database"],),
        ).fetchone()
    assert row is not None
    assert row[0] == 0
