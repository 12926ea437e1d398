"""The distribution benchmark runs in its quick mode; speed is never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "dist_bench.py"


def test_quick_run_measures_every_section(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for label in (
        "plan (wall)",
        "plan (CPU)",
        "no-change rollout",
        "engine CPU / applied resource",
    ):
        assert label in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["plan"]["resources"] == 500
    assert figures["no_change"]["no_change_written"] == 0
    assert figures["overhead"]["applied"] == 50
    assert figures["overhead"]["engine_cpu_ms_per_resource"] > 0
