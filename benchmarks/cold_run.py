#!/usr/bin/env python3
"""A one-step run from a fresh process, on SQLite and on PostgreSQL: wall time and close time.

    .venv/bin/python benchmarks/cold_run.py [--repeats 9] [--url postgresql://...]

Each sample is a new ``python -c`` process that imports spokehub, opens a ``Client``, runs a
one-step workflow and closes the client; the process reports how long closing took, the
parent measures the whole process from fork to exit. SQLite uses a new file per sample,
PostgreSQL a new schema per sample (dropped afterwards) in the database of ``--url``. The
series are interleaved so that load from other processes hits both alike. Bytecode is cached
in the temporary directory first, as a pip-installed spokehub would have it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import quote

DEFAULT_URL = os.environ.get(
    "SPOKEHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

ONE_STEP_RUN = textwrap.dedent(
    """
    import os, sys, time
    import spokehub as sh

    @sh.step
    async def hello(name: str) -> str:
        return "hello " + name

    @sh.workflow
    async def greet(name: str) -> str:
        return await hello(name)

    client = sh.Client(os.environ["BENCH_URL"])
    assert client.run(greet, "world") == "hello world"
    begin = time.perf_counter()
    client.close()
    print(f"close={time.perf_counter() - begin:.6f}")
    """
)


def sample(url: str, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds of the process, seconds its client.close() took)."""
    begin = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", ONE_STEP_RUN],
        env={**env, "BENCH_URL": url},
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - begin
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("close=")]
    return wall, float(line.split("=", 1)[1])


def pg_schema_url(base: str) -> tuple[str, str]:
    import psycopg

    schema = f"cold_{secrets.token_hex(5)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    return schema, f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL database for the schemas")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cwd = Path(d)
        env = {**os.environ, "PYTHONPYCACHEPREFIX": str(cwd / "pyc")}
        for name in ("SPOKEHUB_DATABASE_URL", "PYTHONDONTWRITEBYTECODE"):
            env.pop(name, None)
        series: dict[str, list[tuple[float, float]]] = {"sqlite": [], "postgresql": []}
        sample(f"sqlite:///{cwd / 'warm.db'}", env, cwd)  # fills the bytecode cache
        for i in range(args.repeats):
            series["sqlite"].append(sample(f"sqlite:///{cwd / f'cold-{i}.db'}", env, cwd))
            schema, url = pg_schema_url(args.url)
            try:
                series["postgresql"].append(sample(url, env, cwd))
            finally:
                drop_schema(args.url, schema)
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min); {args.repeats} samples per backend")
    for backend, samples in series.items():
        walls = sorted(w for w, _ in samples)
        closes = sorted(c for _, c in samples)
        print(
            f"{backend:<10} one-step run in a fresh process: median {statistics.median(walls):.3f}"
            f" s (min {walls[0]:.3f}, max {walls[-1]:.3f}); client.close(): median "
            f"{statistics.median(closes) * 1000:.1f} ms (max {closes[-1] * 1000:.1f} ms)"
        )


if __name__ == "__main__":
    main()
