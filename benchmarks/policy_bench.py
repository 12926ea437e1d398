"""Policy benchmark: CPU per evaluation on both CEL engines, and CPU per step with a policy
on every step against the same workflow without one.

    .venv/bin/python benchmarks/policy_bench.py            # about 30 s
    .venv/bin/python benchmarks/policy_bench.py --quick    # a few seconds (the smoke test)
    .venv/bin/python benchmarks/policy_bench.py --json out.json

Targets (issue 9): a simple policy costs at most 50 µs of CPU per evaluation, a policy with a
40-element ``all()`` at most 150 µs, and a run with a policy on every step at most 10% more CPU
per step than the same run without. Evaluations are timed through ``evaluate()``, the path the
hook points take (JSON conversion, matching, digests, the decision object), and through the
bare compiled expression, so both the engine and our overhead are visible. CPU is
``time.process_time()`` (all threads of this process); each figure is the median of batches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spokehub import Client, Interceptor, Settings, step, workflow
from spokehub.governance import (
    Policies,
    PolicyInterceptor,
    Subject,
    evaluate,
    load_policy_texts,
)
from spokehub.testing import FakeClock

SIMPLE = """
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: simple}
spec:
  validations:
    - expression: object.env == 'prod' && object.ring >= 2
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: simple}
spec: {policyName: simple, match: {hooks: [gate]}, actions: [Deny]}
"""

ALL40 = """
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: files}
spec:
  validations:
    - expression: object.license in params.licences
    - expression: "object.files.all(f, !f.path.startsWith('secrets/') && f.bytes < 1000000)"
    - expression: size(object.files) <= 200
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: files}
spec:
  policyName: files
  match: {hooks: [gate]}
  actions: [Deny]
  params: {licences: [MIT, Apache-2.0]}
"""

EVERY_STEP = """
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: step-args}
spec:
  validations:
    - expression: object.args.x >= 0 && object.attempt <= 5
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: every-step}
spec: {policyName: step-args, match: {hooks: [step], names: ["pb_*"]}, actions: [Deny]}
"""

ENGINES = ("cel-expr-python", "common-expression-language")


def _median_us(fn: Any, n: int, batches: int) -> float:
    per: list[float] = []
    for _ in range(batches):
        began = time.process_time()
        for _ in range(n):
            fn()
        per.append((time.process_time() - began) / n * 1e6)
    return statistics.median(per)


def evaluations(quick: bool) -> dict[str, float]:
    n, batches = (300, 3) if quick else (3000, 7)
    simple_doc = {"env": "prod", "ring": 3}
    files_doc = {
        "license": "MIT",
        "files": [{"path": f"src/file{i}.css", "bytes": 1000 + i} for i in range(40)],
    }
    out: dict[str, float] = {}
    for engine in ENGINES:
        for label, text, doc in (("simple", SIMPLE, simple_doc), ("all40", ALL40, files_doc)):
            ps = load_policy_texts([("bench.yaml", text)], engine=engine)
            subject = Subject("gate", "wf", "g")
            decision = evaluate(ps, subject, doc, now=0.0)
            assert decision.decision == "allow", decision.to_dict()
            out[f"{engine} {label} evaluate() us"] = _median_us(
                lambda ps=ps, doc=doc, subject=subject: evaluate(ps, subject, doc, now=0.0),
                n,
                batches,
            )
            policy = next(iter(ps.policies.values()))
            programs = [v.program for v in policy.validations]
            activation = {
                "object": doc,
                "params": ps.bindings[0].params,
                "request": {},
                "variables": {},
            }
            cel = ps.cel
            assert cel is not None

            def bare(
                programs: Any = programs, activation: Any = activation, cel: Any = cel
            ) -> None:
                bound = cel.bind(activation)  # the document converted once for all checks
                for p in programs:
                    p.evaluate(bound)

            out[f"{engine} {label} expression only us"] = _median_us(bare, n, batches)
    return out


@step
async def pb_add(x: int) -> int:
    return x + 1


@workflow
async def pb_flow(x: int) -> int:
    for _ in range(10):
        x = await pb_add(x)
    return x


async def _cpu_per_step(db: Path, mode: str, runs: int) -> float:
    client = Client(settings=Settings(database_url=f"sqlite:///{db}"), clock=FakeClock())
    if mode == "governed":
        policies = Policies(load_policy_texts([("bench.yaml", EVERY_STEP)]), clock=client.clock)
        client.interceptors = (PolicyInterceptor(policies),)
    elif mode == "pass-through":  # the interceptor machinery alone (tracing pays it too)
        client.interceptors = (Interceptor(),)
    try:
        for i in range(2):  # warm-up, not counted
            await client.run_async(pb_flow.options(run_id=f"warm-{i}"), i)
        began = time.process_time()
        for i in range(runs):
            assert await client.run_async(pb_flow.options(run_id=f"r-{i}"), i) == i + 10
        return (time.process_time() - began) / (runs * 10) * 1e3
    finally:
        await client.close_async()


def per_step(quick: bool, directory: Path) -> dict[str, float]:
    runs, rounds = (20, 1) if quick else (100, 7)
    found: dict[str, list[float]] = {"plain": [], "pass-through": [], "governed": []}
    for r in range(rounds):  # interleaved, so load swings hit every mode alike
        for mode, values in found.items():
            values.append(asyncio.run(_cpu_per_step(directory / f"{mode}-{r}.db", mode, runs)))
    p, t, g = (statistics.median(found[m]) for m in ("plain", "pass-through", "governed"))
    return {
        "plain CPU ms/step": p,
        "pass-through interceptor CPU ms/step": t,
        "governed CPU ms/step": g,
        "governed / plain": g / p,
        "governed / pass-through": g / t,
    }


TARGETS = {
    "cel-expr-python simple evaluate() us": 50.0,
    "cel-expr-python all40 evaluate() us": 150.0,
    "governed / plain": 1.10,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args(argv)
    figures = evaluations(args.quick)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        figures.update(per_step(args.quick, Path(tmp)))
    width = max(len(k) for k in figures)
    print(f"{'figure':<{width}}  {'measured':>10}  target")
    for key, value in figures.items():
        target = TARGETS.get(key)
        verdict = "" if target is None else ("pass" if value <= target else "MISS")
        shown = f"<= {target:g}  {verdict}" if target is not None else ""
        print(f"{key:<{width}}  {value:>10.3f}  {shown}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
