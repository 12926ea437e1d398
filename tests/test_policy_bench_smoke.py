"""The policy benchmark runs end to end in its quick mode (speed is never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "policy_bench.py"


def test_policy_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out), "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    figures = json.loads(out.read_text())
    for key in (
        "cel-expr-python simple evaluate() us",
        "cel-expr-python all40 evaluate() us",
        "common-expression-language all40 evaluate() us",
        "governed / plain",
    ):
        assert figures[key] > 0, key
    assert "governed / plain" in proc.stdout
