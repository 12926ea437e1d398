"""The integrations benchmark runs in quick mode and reports every figure (speed not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "integrations_bench.py"


def test_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    for name in (
        "connector_overhead_cpu_ms",
        "breaker_admit_us",
        "breaker_and_rate_limit_admit_us",
    ):
        assert figures[name] == figures[name]  # a number, not NaN
    assert figures["connector_cpu_ms_per_call"] > 0
    assert "connector_overhead_cpu_ms" in proc.stdout
