"""The benchmark command runs end to end in its quick mode and reports sane figures.

Speed is never asserted here (it depends on the machine and its load); only that every
section ran, measured something, and that the durable work it measured was done right.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out), "--dir", str(tmp)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout, json.loads(out.read_text())


def test_prints_every_section(quick_run: tuple[str, dict[str, Any]]) -> None:
    stdout, _ = quick_run
    for label in (
        "machine",
        "raw SQLite commits/s (before)",
        "raw SQLite commits/s (after)",
        "sequential: commits/step",
        "sequential: CPU ms/step",
        "concurrent: commits/step",
        "cold: import spokehub",
        "cold: one-step run",
        "waiting: worker RSS",
        "waiting: completed after signals",
    ):
        assert label in stdout, f"{label!r} missing from the report"


def test_machine_facts(quick_run: tuple[str, dict[str, Any]]) -> None:
    machine = quick_run[1]["machine"]
    assert machine["cores"] >= 1
    assert machine["sqlite"].count(".") == 2
    assert machine["synchronous"] == "FULL"


def test_raw_rate_is_measured(quick_run: tuple[str, dict[str, Any]]) -> None:
    for when in ("before", "after"):
        raw = quick_run[1]["raw"][when]
        assert raw["commits"] > 0
        assert raw["commits_per_s"] == pytest.approx(raw["commits"] / raw["seconds"])


def test_sequential_runs_commit_every_step(quick_run: tuple[str, dict[str, Any]]) -> None:
    seq = quick_run[1]["sequential"]
    assert seq["steps"] == seq["runs"] * 10
    # One run at a time cannot share commits: each step's result is committed before the
    # next step starts, so there is at least one durable commit per step.
    assert seq["commits"] >= seq["steps"]
    assert seq["cpu_s"] > 0
    assert seq["wall_s"] > 0


def test_concurrent_runs_are_measured(quick_run: tuple[str, dict[str, Any]]) -> None:
    conc = quick_run[1]["concurrent"]
    assert conc["steps"] == conc["runs"] * 10 == 1000
    assert conc["commits"] > 0
    assert conc["cpu_s"] > 0


def test_cold_start_timings(quick_run: tuple[str, dict[str, Any]]) -> None:
    cold = quick_run[1]["cold_start"]
    samples = cold["python"] + cold["imports"] + cold["one_step_runs"]
    assert len(samples) == 3 * len(cold["imports"]) > 0
    assert all(t["wall_s"] > 0 and t["cpu_s"] >= 0 for t in samples)


def test_every_waiting_run_parks_then_completes(quick_run: tuple[str, dict[str, Any]]) -> None:
    wait = quick_run[1]["waiting"]
    assert wait["waiting"] == wait["runs"]
    assert wait["statuses"] == {"completed": wait["runs"]}
    assert wait["results_ok"]
    assert wait["rss_baseline_mb"] > 0
    assert wait["rss_peak_mb"] >= wait["rss_waiting_mb"] > 0


def test_table_has_a_verdict_for_every_target(quick_run: tuple[str, dict[str, Any]]) -> None:
    table = quick_run[1]["table"]
    with_target = [row for row in table if row["target"] != "-"]
    assert len(with_target) >= 7
    assert all(isinstance(row["ok"], bool) for row in with_target)
