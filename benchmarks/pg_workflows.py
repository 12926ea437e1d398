"""The workflow ``benchmarks/pg_bench.py`` measures, in a module the worker CLI can import.

The benchmark enqueues runs of it; its worker processes are plain ``spokehub worker --app
benchmarks/pg_workflows.py`` commands. The step does (almost) nothing, so every figure is the
engine's own cost: ledger, commits, claims, replay.
"""

from __future__ import annotations

import spokehub as sh

STEPS_PER_RUN = 10


@sh.step(name="pgbench.add_one")
async def add_one(x: int) -> int:
    return x + 1


@sh.workflow(name="pgbench.ten_steps")
async def ten_steps(x: int) -> int:
    for _ in range(STEPS_PER_RUN):
        x = await add_one(x)
    return x
