"""CPU per sequential step, best of a few rounds: for A/B comparisons of two versions of the code.

    .venv/bin/python benchmarks/cpu_per_step.py                       # this checkout
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python benchmarks/cpu_per_step.py

Run the two alternately, several times: this machine's CPU speed drifts, so only interleaved
runs compare code.
"""

from __future__ import annotations

import asyncio
import tempfile
import time

import spokehub as sh


@sh.step
async def cps_step(i: int) -> int:
    return i


@sh.workflow
async def cps_ten(n: int) -> int:
    total = 0
    for i in range(10):
        total += await cps_step(i)
    return total


async def main(warmup: int = 20, runs: int = 150, rounds: int = 3) -> float:
    with tempfile.TemporaryDirectory() as folder:
        client = sh.Client(f"sqlite:///{folder}/cpu.db")
        for i in range(warmup):
            await client.run_async(cps_ten, i)
        best = float("inf")
        for _ in range(rounds):
            began = time.process_time()
            for i in range(runs):
                await client.run_async(cps_ten, i)
            best = min(best, (time.process_time() - began) / (runs * 10) * 1000)
        await client.close_async()
    return best


if __name__ == "__main__":
    print(f"best CPU ms per sequential step: {asyncio.run(main()):.3f}")
