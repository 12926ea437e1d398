"""Distribution speed: plan a large fleet, a no-change rollout, engine CPU per applied resource.

Usage:
    .venv/bin/python benchmarks/dist_bench.py [--quick] [--json out.json]

Sections (limits from issue 13):
    plan       1,000 fs targets x 50 resources (all creates), from loading the manifests to the
               finished plan                                             (< 10 s)
    no-change  a rollout over 100 fs targets x 10 resources that are already in sync  (< 5 s)
    overhead   CPU per applied resource in a rollout that creates 100 x 20 files, minus the CPU
               of writing the same files with a bare loop                (<= 2 ms)
Everything runs on a temporary folder and a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spokehub import Client, Settings
from spokehub.distribution import service
from spokehub.distribution.steps import _CACHE

HEAD = "apiVersion: spokehub.dev/v1alpha1\n"


def make_hub(root: Path, targets: int, resources: int, release: str = "r1") -> None:
    docs = []
    for t in range(targets):
        docs.append(
            HEAD + f"kind: Target\nmetadata: {{name: t{t:04d}, labels: {{fleet: bench}}}}\n"
            f"spec: {{adapter: fs, config: {{path: out/t{t:04d}}}, drift: {{mode: detect}}}}\n"
        )
        folder = root / "releases" / release / f"t{t:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for r in range(resources):
            (folder / f"f{r:03d}.txt").write_text(f"target {t} resource {r} release {release}\n")
    docs.append(
        HEAD + "kind: Distribution\nmetadata: {name: bench}\nspec:\n"
        "  source: {use: files, with: {path: 'releases/{release}/{target.name}'}}\n"
        "  targets: {selector: {matchLabels: {fleet: bench}}}\n  rollout: one\n"
    )
    docs.append(
        HEAD + "kind: Rollout\nmetadata: {name: one}\nspec:\n"
        "  waves: [{name: all, targets: {matchLabels: {fleet: bench}}, maxConcurrent: 8}]\n"
    )
    (root / "manifests").mkdir(exist_ok=True)
    (root / "manifests" / "hub.yaml").write_text("---\n".join(docs))


async def rollout(client: Client, hub: Path, release: str) -> dict[str, Any]:
    handle = await service.start_rollout(client, hub, "bench", release)
    run = await service.drive(client, handle.id)
    assert isinstance(run.result, dict), run
    assert run.result["status"] == "Succeeded", run
    return run.result


async def plan_section(tmp: Path, targets: int, resources: int) -> dict[str, float]:
    hub = tmp / "plan"
    make_hub(hub, targets, resources)
    client = Client(settings=Settings(database_url=f"sqlite:///{tmp / 'plan.db'}"))
    _CACHE.clear()
    started, cpu = time.perf_counter(), time.process_time()
    plan = await service.plan(client, hub, "bench", "r1")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await client.close_async()
    assert plan.totals()["create"] == targets * resources
    return {"targets": targets, "resources": targets * resources, "seconds": seconds, "cpu_s": cpu}


async def rollout_sections(tmp: Path, targets: int, resources: int) -> dict[str, float]:
    hub = tmp / "roll"
    make_hub(hub, targets, resources)
    client = Client(settings=Settings(database_url=f"sqlite:///{tmp / 'roll.db'}"))
    await client.ensure_schema()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await rollout(client, hub, "r1")
    cpu_apply, wall_apply = time.process_time() - cpu0, time.perf_counter() - wall0
    wall1 = time.perf_counter()
    again = await _no_change(client, hub)
    wall_nochange = time.perf_counter() - wall1
    await client.close_async()
    raw = _raw_write_cpu(tmp / "raw", targets, resources)
    applied = targets * resources
    return {
        "applied": applied,
        "apply_wall_s": wall_apply,
        "apply_cpu_ms_per_resource": 1000 * cpu_apply / applied,
        "raw_write_cpu_ms_per_resource": 1000 * raw / applied,
        "engine_cpu_ms_per_resource": 1000 * (cpu_apply - raw) / applied,
        "no_change_targets": targets,
        "no_change_s": wall_nochange,
        "no_change_written": sum(
            t["changed"] for w in again["waves"] for t in w["targets"].values()
        ),
    }


async def _no_change(client: Client, hub: Path) -> dict[str, Any]:
    # The same release again, as a new promotion: every resource is planned and found in sync.
    handle = await service.start_rollout(client, hub, "bench", "r1", retry=True)
    run = await service.drive(client, handle.id)
    assert isinstance(run.result, dict)
    return run.result


def _raw_write_cpu(root: Path, targets: int, resources: int) -> float:
    started = time.process_time()
    for t in range(targets):
        folder = root / f"t{t:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for r in range(resources):
            (folder / f"f{r:03d}.txt").write_text(f"target {t} resource {r} release r1\n")
    return time.process_time() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    fleet = (50, 10) if args.quick else (1000, 50)
    roll = (10, 5) if args.quick else (100, 10)
    over = (10, 5) if args.quick else (100, 20)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        plan = asyncio.run(plan_section(base, *fleet))
        nochange = asyncio.run(rollout_sections(base / "a", *roll))
        overhead = asyncio.run(rollout_sections(base / "b", *over))
    rows = [
        (
            "plan (wall)",
            f"{fleet[0]} targets x {fleet[1]} resources",
            "< 10 s",
            plan["seconds"],
            10.0,
        ),
        ("plan (CPU)", f"{fleet[0]} targets x {fleet[1]} resources", "< 10 s", plan["cpu_s"], 10.0),
        ("no-change rollout", f"{roll[0]} targets", "< 5 s", nochange["no_change_s"], 5.0),
        (
            "engine CPU / applied resource",
            f"{overhead['applied']} resources",
            "<= 2 ms",
            overhead["engine_cpu_ms_per_resource"],
            2.0,
        ),
    ]
    print(f"{'figure':<32} {'size':<28} {'limit':<9} {'measured':>10}  ratio")
    for name, size, limit, value, cap in rows:
        print(
            f"{name:<32} {size:<28} {limit:<9} {value:>10.3f}  {value / cap:.2f} "
            + ("ok" if value <= cap else "MISS")
        )
    details = {"plan": plan, "no_change": nochange, "overhead": overhead}
    print(json.dumps(details, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(details, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
