#!/usr/bin/env python3
"""Every check the project runs, in one place; CI and the README call this.

python scripts/check.py            # lint, format, types, layers, tests with coverage
python scripts/check.py --fast     # skip tests marked slow
python scripts/check.py -- -k saga # extra arguments go to pytest (one run, both kinds)

The tests run in two steps: everything not marked ``slow``, then the slow ones (crash loops
with SIGKILL, PostgreSQL chaos and restarts, multi-process fan-outs), so each step stays well
under 15 minutes on 2 cores. Coverage is collected over both and the floor is checked on the
total, after the second step. ``--fast`` runs the first step only, and checks the floor there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COVERAGE_FLOOR = 85


def tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else name


def main(argv: list[str]) -> int:
    fast = "--fast" in argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    pytest = [
        sys.executable,
        "-m",
        "pytest",
        "-W",
        "error",
        "--timeout=300",
        "--cov=spokehub",
        "--cov-branch",
    ]
    report = [f"--cov-fail-under={COVERAGE_FLOOR}", "--cov-report=term:skip-covered"]
    quick = [*pytest, "-m", "not slow", *(report if fast else ["--cov-report="]), *extra]
    slow = [*pytest, "-m", "slow", "--cov-append", *report, *extra]
    steps = [
        ("ruff lint", [tool("ruff"), "check", "src", "tests", "examples", "benchmarks", "scripts"]),
        (
            "ruff format",
            [
                tool("ruff"),
                "format",
                "--check",
                "src",
                "tests",
                "examples",
                "benchmarks",
                "scripts",
            ],
        ),
        ("mypy --strict", [tool("mypy"), "src/spokehub"]),
        ("import layers", [tool("lint-imports")]),
    ]
    if extra and not fast:  # a selection (-k ...): one run over every test it picks
        steps.append(("pytest", [*pytest, *report, *extra]))
    else:
        steps.append(("pytest (not slow)", quick))
        if not fast:
            steps.append(("pytest (slow: crash loops, chaos, fan-outs)", slow))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    failed = []
    for title, cmd in steps:
        print(
            f"\n=== {title}: {' '.join(cmd[2:] if cmd[0] == sys.executable else cmd)}", flush=True
        )
        began = time.monotonic()
        code = subprocess.call(cmd, cwd=ROOT, env=env)
        print(
            f"--- {title}: {'ok' if code == 0 else f'FAILED (exit {code})'} "
            f"in {time.monotonic() - began:.1f}s",
            flush=True,
        )
        if code != 0:
            failed.append(title)
    if failed:
        print(f"\nchecks failed: {', '.join(failed)}")
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
