"""The patterns benchmark runs end to end in quick mode (speed is never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "patterns_bench.py"


def test_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--no-peers", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["spokehub"]["median_s"] > 0
    inc = figures["incremental"]
    assert inc["unchanged_all_cached"] is True
    assert 0 < inc["renderings_after_one_token_change"] < inc["renderings_first_build"] / 10
    assert "spokehub" in proc.stdout
