#!/usr/bin/env python3
"""Every check the project runs, in one place; CI and the README call this.

python scripts/check.py            # lint, format, types, layers, tests with coverage
python scripts/check.py --fast     # skip tests marked slow
python scripts/check.py -- -k saga # extra arguments go to pytest
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
        f"--cov-fail-under={COVERAGE_FLOOR}",
        "--cov-report=term:skip-covered",
    ]
    if fast:
        pytest += ["-m", "not slow"]
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
        ("pytest", pytest + extra),
    ]
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
