#!/usr/bin/env python3
"""Speed of the intelligence layer's local parts: embeddings, memory search, detectors.

    .venv/bin/python benchmarks/intelligence_bench.py            # full sizes (about 1 min)
    .venv/bin/python benchmarks/intelligence_bench.py --quick    # small sizes (smoke test)
    .venv/bin/python benchmarks/intelligence_bench.py --json out.json

Targets (issue 14): embedded embeddings >= 150 texts/s batched and < 20 ms for one text;
memory search over 100,000 vectors < 50 ms; a detector update < 20 us. Each figure is printed
with its target and the ratio measured/target; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spokehub import Client, Settings
from spokehub.intelligence.detectors import EWMA, RobustZScore
from spokehub.intelligence.embeddings import LocalEmbedder
from spokehub.intelligence.memory import LongTermMemory

TEXTS = [
    "Product {i}: a lightweight waterproof jacket for hiking, size {s}, colour {c}.",
    "Order {i} was delayed at the {c} warehouse because size {s} ran out.",
    "Release {i} of the design tokens changes the {c} palette for theme {s}.",
]


def _texts(n: int) -> list[str]:
    colours = ["red", "blue", "green", "black", "sand"]
    return [TEXTS[i % 3].format(i=i, s=i % 7, c=colours[i % 5]) for i in range(n)]


def bench_embeddings(quick: bool) -> dict[str, float]:
    emb = LocalEmbedder(batch_size=32)
    texts = _texts(64 if quick else 512)
    emb.embed(texts[:32])  # warm-up: first call allocates
    began = time.perf_counter()
    emb.embed(texts)
    batched = len(texts) / (time.perf_counter() - began)
    singles = []
    for text in texts[: 20 if quick else 100]:
        t = time.perf_counter()
        emb.embed([text])
        singles.append(time.perf_counter() - t)
    return {
        "batched texts/s": batched,
        "single text median ms": statistics.median(singles) * 1000,
        "single text p95 ms": sorted(singles)[int(len(singles) * 0.95) - 1] * 1000,
    }


async def _search(quick: bool, directory: str) -> dict[str, float]:
    import numpy as np

    n = 5_000 if quick else 100_000
    client = Client(settings=Settings(database_url=f"sqlite:///{directory}/mem.db"))
    try:
        mem = LongTermMemory(client)
        rng = np.random.default_rng(7)
        vectors = rng.standard_normal((n, 384)).astype(np.float32)
        began = time.perf_counter()
        chunk = 5_000
        for start in range(0, n, chunk):
            part = vectors[start : start + chunk]
            await mem.add(
                "bench",
                [f"doc {i}" for i in range(start, start + len(part))],
                metadata=[{"shard": i % 10} for i in range(start, start + len(part))],
                ids=[str(i) for i in range(start, start + len(part))],
                vectors=part.tolist(),
            )
        insert_s = time.perf_counter() - began
        began = time.perf_counter()
        await mem.search("bench", vectors[0].tolist(), k=10)  # first search loads the index
        load_s = time.perf_counter() - began
        timings, filtered = [], []
        for i in range(30):
            q = vectors[(i * 977) % n].tolist()
            t = time.perf_counter()
            hits = await mem.search("bench", q, k=10)
            timings.append(time.perf_counter() - t)
            assert hits[0].id == str((i * 977) % n)  # exact search finds the vector itself
            t = time.perf_counter()
            await mem.search("bench", q, k=10, filter={"shard": 3})
            filtered.append(time.perf_counter() - t)
        return {
            "vectors": n,
            "insert s": insert_s,
            "first search (index load) s": load_s,
            "search median ms": statistics.median(timings) * 1000,
            "filtered search median ms": statistics.median(filtered) * 1000,
        }
    finally:
        await client.close_async()


def bench_mapping() -> dict[str, float]:
    """Top-1 accuracy of map_schema on the 31 labelled field pairs of the tests."""
    from spokehub.intelligence.mapping import map_schema

    data = Path(__file__).resolve().parent.parent / "tests" / "data" / "mapping_pairs.json"
    cases = json.loads(data.read_text())["cases"]
    total = assigned = best = 0
    began = time.perf_counter()
    for case in cases:
        proposal = map_schema(case["source"], case["target"], threshold=0.0)
        pairs = proposal.pairs()
        for source, want in case["truth"].items():
            total += 1
            assigned += pairs.get(source) == want
        # the single best target per source field, before the one-to-one assignment
        alone = {
            s["name"]: map_schema([s], case["target"], threshold=0.0).pairs().get(s["name"])
            for s in case["source"]
        }
        best += sum(alone[s] == t for s, t in case["truth"].items())
    return {
        "pairs": total,
        "top-1 accuracy (one-to-one assignment)": assigned / total,
        "top-1 accuracy (best score alone)": best / total,
        "seconds": time.perf_counter() - began,
    }


def bench_detectors(quick: bool) -> dict[str, float]:
    n = 20_000 if quick else 200_000
    rng = random.Random(1)
    values = [rng.gauss(1.0, 0.1) for _ in range(n)]
    out = {}
    for name, det in (("robust_z", RobustZScore(window=50)), ("ewma", EWMA())):
        began = time.process_time()
        for v in values:
            det.update(v)
        out[f"{name} update us"] = (time.process_time() - began) / n * 1e6
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    figures: dict[str, Any] = {"embeddings": bench_embeddings(args.quick)}
    with tempfile.TemporaryDirectory() as directory:
        figures["memory"] = asyncio.run(_search(args.quick, directory))
    figures["detectors"] = bench_detectors(args.quick)
    figures["mapping"] = bench_mapping()
    rows = [
        ("embeddings: batched texts/s", figures["embeddings"]["batched texts/s"], 150, ">="),
        ("embeddings: one text, median ms",
         figures["embeddings"]["single text median ms"], 20, "<"),
        (f"memory search over {figures['memory']['vectors']:,} vectors, median ms",
         figures["memory"]["search median ms"], 50, "<"),
        ("detector update (robust z), us", figures["detectors"]["robust_z update us"], 20, "<"),
        ("detector update (EWMA), us", figures["detectors"]["ewma update us"], 20, "<"),
        ("schema mapping top-1 accuracy (31 pairs)",
         figures["mapping"]["top-1 accuracy (one-to-one assignment)"], 0.9, ">="),
    ]  # fmt: skip
    print(f"\n{'figure':<52} {'target':>10} {'measured':>10} {'ratio':>7}  verdict")
    for label, value, target, sense in rows:
        ok = value >= target if sense == ">=" else value < target
        ratio = value / target
        print(f"{label:<52} {sense + str(target):>10} {value:>10.2f} {ratio:>7.2f}  "
              f"{'pass' if ok else 'MISS'}")  # fmt: skip
    print("\ndetails:", json.dumps(figures, indent=2, default=float))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
