"""What encryption at rest costs: CPU per step on the sequential benchmark, with and without keys.

    .venv/bin/python benchmarks/encryption.py            # about 30 s
    .venv/bin/python benchmarks/encryption.py --quick    # a few seconds (the smoke test)
    .venv/bin/python benchmarks/encryption.py --json out.json

The workload is ``bench.py``'s sequential section: ten-step async runs, one after another,
each with ``client.run_async`` on a fresh SQLite file (WAL, synchronous=FULL). Plain and
encrypted runs are interleaved one by one (two clients, two files), so CPU drift hits both
alike; the figure is the median over rounds of (encrypted CPU per step / plain CPU per step
- 1), against the limit of 20 %. ``time.process_time()`` counts every thread of the
process (the event loop and the database thread). A second workload makes each step return
2 KiB, where sealing costs the most relative to the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spokehub import Client, Settings, step, workflow

LIMIT = 0.20
KEYS = f"bench:{base64.b64encode(os.urandom(32)).decode()}"
PAYLOAD = "p" * 2048


@step
async def enc_bench_add(x: int) -> int:
    return x + 1


@step
async def enc_bench_text(x: int) -> str:
    return f"{x}:{PAYLOAD}"


@workflow
async def enc_bench_ten(x: int) -> int:
    for _ in range(10):
        x = await enc_bench_add(x)
    return x


@workflow
async def enc_bench_ten_2k(x: int) -> int:
    n = 0
    for i in range(10):
        n += len(await enc_bench_text(x + i))
    return n


def _settings(path: Path, keys: str | None) -> Settings:
    # Explicit settings: SPOKEHUB_* variables in the shell do not change what is measured.
    return Settings(database_url=f"sqlite:///{path}", encryption_keys=keys)


async def _round(directory: Path, tag: str, runs: int, wf: Any) -> tuple[float, float, Path]:
    """CPU ms per step, plain and encrypted, with runs interleaved one by one.

    Both clients stay open on their own files; each run is timed alone (an idle client's
    database thread uses no CPU), alternating which kind goes first, so drift in the
    machine's speed hits both alike.
    """
    plain_path, sealed_path = directory / f"{tag}-plain.db", directory / f"{tag}-enc.db"
    plain = Client(settings=_settings(plain_path, None))
    sealed = Client(settings=_settings(sealed_path, KEYS))
    spent = {id(plain): 0.0, id(sealed): 0.0}
    try:
        for i in range(3):  # warm-up: schema, imports, caches
            await plain.run_async(wf, i)
            await sealed.run_async(wf, i)
        for i in range(runs):
            for client in (plain, sealed) if i % 2 else (sealed, plain):
                began = time.process_time()
                await client.run_async(wf, i)
                spent[id(client)] += time.process_time() - began
    finally:
        await plain.close_async()
        await sealed.close_async()
    per_step = 1000 / (runs * 10)
    return spent[id(plain)] * per_step, spent[id(sealed)] * per_step, sealed_path


def _plaintext_left(path: Path) -> bool:
    data = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    return PAYLOAD[:64].encode() in data


def measure(directory: Path, runs: int, rounds: int, wf: Any) -> dict[str, Any]:
    plain: list[float] = []
    sealed: list[float] = []
    leaked = False
    for r in range(rounds):
        p, e, path = asyncio.run(_round(directory, f"{wf.name}-{r}", runs, wf))
        plain.append(p)
        sealed.append(e)
        leaked |= _plaintext_left(path)
    overheads = [s / p - 1 for p, s in zip(plain, sealed, strict=True)]
    return {
        "workflow": wf.name,
        "runs_per_round": runs,
        "plain_cpu_ms_per_step": plain,
        "encrypted_cpu_ms_per_step": sealed,
        "overhead_per_round": overheads,
        "overhead_median": statistics.median(overheads),
        "overhead_total": sum(sealed) / sum(plain) - 1,
        "plaintext_in_encrypted_files": leaked,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    runs, rounds = (10, 2) if args.quick else (200, 5)
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as folder:
        results = [
            measure(Path(folder), runs, rounds, wf) for wf in (enc_bench_ten, enc_bench_ten_2k)
        ]
    print(f"{'workload':<22}{'plain ms/step':>15}{'encrypted':>12}{'overhead':>10}  limit 20 %")
    for res in results:
        p = statistics.median(res["plain_cpu_ms_per_step"])
        s = statistics.median(res["encrypted_cpu_ms_per_step"])
        verdict = "pass" if res["overhead_median"] <= LIMIT else "MISS"
        print(f"{res['workflow']:<22}{p:>15.3f}{s:>12.3f}{res['overhead_median']:>9.1%}  {verdict}")
        if res["plaintext_in_encrypted_files"]:
            print(f"ERROR: plaintext payload found in an encrypted database ({res['workflow']})")
    print(f"load average {os.getloadavg()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if any(r["plaintext_in_encrypted_files"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
