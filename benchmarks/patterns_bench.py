#!/usr/bin/env python3
"""Patterns benchmark: validate, resolve and build N tokens x 2 themes to the six platforms.

Side by side, on the same generated input in the same run: spokehub (a fresh Python process
per run: interpreter, imports, load, validate, resolve, build, write), Style Dictionary 5 (one
node process building both themes, from plain token folders since it has no resolver) and
Terrazzo 2 (`tz build` with the resolver, CSS with both themes plus JS: the platforms it has
plugins for). Then, in one process with a build cache: an unchanged rebuild, and a rebuild after
changing one token, counting how many token renderings were recomputed.

    .venv/bin/python benchmarks/patterns_bench.py                 # 5,000 tokens, 3 runs each
    .venv/bin/python benchmarks/patterns_bench.py --quick         # 500 tokens, 1 run
    .venv/bin/python benchmarks/patterns_bench.py --json out.json --no-peers

Peers come from npm (cached in ~/.cache/spokehub/npm-peers); without npm they are left out and
the reason is printed. Timings are wall-clock medians; the machine is shared, so compare the
figures of one run with each other, not across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PLATFORMS = ("css", "scss", "ts", "swift", "android", "markdown")

SPOKEHUB_RUN = """
import sys
from pathlib import Path
from spokehub.patterns import load_hub, build
hub = load_hub(sys.argv[1])
errors = [d for d in hub.validate() if d.severity == "error"]
assert not errors, errors[:3]
p = hub.get("bench.tokens")
for platform in sys.argv[3].split(","):
    build(p, platform).write(Path(sys.argv[2]) / platform)
"""

TERRAZZO_CONFIG = """
import {{ defineConfig }} from '@terrazzo/cli';
import css from '@terrazzo/plugin-css';
import js from '@terrazzo/plugin-js';
export default defineConfig({{
  tokens: ['{resolver}'],
  outDir: '{out}/',
  plugins: [
    css({{ filename: 'tokens.css', permutations: [
      {{ input: {{ theme: 'light' }}, prepare: (c) => `:root {{\\n${{c}}\\n}}` }},
      {{ input: {{ theme: 'dark' }}, prepare: (c) => `[data-theme='dark'] {{\\n${{c}}\\n}}` }},
    ] }}),
    js({{ js: 'tokens.js' }}),
  ],
}});
"""


def _srgb(i: int, shift: int = 0) -> dict[str, Any]:
    return {
        "colorSpace": "srgb",
        "components": [
            ((i * 37 + shift) % 256) / 255,
            ((i * 91) % 256) / 255,
            ((i * 53 + 7) % 256) / 255,
        ],
    }


def _dim(v: float, unit: str = "px") -> dict[str, Any]:
    return {"value": v, "unit": unit}


def make_hub(root: Path, n: int) -> dict[str, Any]:
    """A hub of ``n`` tokens per theme: 70% primitives (all types), 30% themed aliases."""
    tokens = root / "tokens"
    (tokens / "themes").mkdir(parents=True)
    n_sem = n * 3 // 10
    n_prim = n - n_sem
    quota = {
        "color": 0.40,
        "dimension": 0.15,
        "duration": 0.04,
        "fontWeight": 0.03,
        "number": 0.04,
        "cubicBezier": 0.03,
        "fontFamily": 0.02,
        "border": 0.08,
        "shadow": 0.08,
        "transition": 0.05,
        "typography": 0.08,
    }
    counts = {k: max(1, int(n_prim * v)) for k, v in quota.items()}
    counts["color"] += n_prim - sum(counts.values())
    c, d = counts["color"], counts["dimension"]
    prim: dict[str, Any] = {
        "palette": {"$type": "color", **{f"c{i}": {"$value": _srgb(i)} for i in range(c)}},
        "size": {
            "$type": "dimension",
            **{f"s{i}": {"$value": _dim(i % 64 + 1, "px" if i % 3 else "rem")} for i in range(d)},
        },
        "motion": {
            "$type": "duration",
            **{
                f"m{i}": {"$value": {"value": 50 + i, "unit": "ms"}}
                for i in range(counts["duration"])
            },
        },
        "weight": {
            "$type": "fontWeight",
            **{f"w{i}": {"$value": 100 + (i * 100) % 900} for i in range(counts["fontWeight"])},
        },
        "ratio": {
            "$type": "number",
            **{f"r{i}": {"$value": i / 10} for i in range(counts["number"])},
        },
        "ease": {
            "$type": "cubicBezier",
            **{
                f"e{i}": {"$value": [0.4, 0, (i % 10) / 10, 1]}
                for i in range(counts["cubicBezier"])
            },
        },
        "family": {
            "$type": "fontFamily",
            **{
                f"f{i}": {"$value": [f"Font {i}", "sans-serif"]}
                for i in range(counts["fontFamily"])
            },
        },
        "border": {
            "$type": "border",
            **{
                f"b{i}": {
                    "$value": {
                        "color": f"{{palette.c{i % c}}}",
                        "width": f"{{size.s{i % d}}}",
                        "style": "solid",
                    }
                }
                for i in range(counts["border"])
            },
        },
        "shadow": {
            "$type": "shadow",
            **{
                f"sh{i}": {
                    "$value": {
                        "color": f"{{palette.c{(i * 7) % c}}}",
                        "offsetX": _dim(0),
                        "offsetY": _dim(i % 8),
                        "blur": _dim(i % 16),
                        "spread": _dim(0),
                    }
                }
                for i in range(counts["shadow"])
            },
        },
        "transition": {
            "$type": "transition",
            **{
                f"t{i}": {
                    "$value": {
                        "duration": f"{{motion.m{i % counts['duration']}}}",
                        "delay": {"value": 0, "unit": "ms"},
                        "timingFunction": f"{{ease.e{i % counts['cubicBezier']}}}",
                    }
                }
                for i in range(counts["transition"])
            },
        },
        "type": {
            "$type": "typography",
            **{
                f"y{i}": {
                    "$value": {
                        "fontFamily": f"{{family.f{i % counts['fontFamily']}}}",
                        "fontSize": _dim(12 + i % 20),
                        "fontWeight": f"{{weight.w{i % counts['fontWeight']}}}",
                        "letterSpacing": _dim(0),
                        "lineHeight": 1.4,
                    }
                }
                for i in range(counts["typography"])
            },
        },
    }
    (tokens / "primitives.tokens.json").write_text(json.dumps(prim, indent=1))
    for theme, offset in (("light", 0), ("dark", c // 2)):
        sem = {
            "semantic": {
                "$type": "color",
                **{
                    f"x{i}": {
                        "$value": f"{{palette.c{(i + offset) % c}}}",
                        **({"$deprecated": "use another"} if i % 97 == 0 else {}),
                    }
                    for i in range(n_sem)
                },
            }
        }
        (tokens / "themes" / f"{theme}.tokens.json").write_text(json.dumps(sem, indent=1))
    (tokens / "resolver.json").write_text(
        json.dumps(
            {
                "version": "2025.10",
                "sets": {"base": {"sources": [{"$ref": "primitives.tokens.json"}]}},
                "modifiers": {
                    "theme": {
                        "default": "light",
                        "contexts": {
                            "light": [{"$ref": "themes/light.tokens.json"}],
                            "dark": [{"$ref": "themes/dark.tokens.json"}],
                        },
                    }
                },
                "resolutionOrder": [{"$ref": "#/sets/base"}, {"$ref": "#/modifiers/theme"}],
            },
            indent=1,
        )
    )
    (root / "patterns").mkdir()
    (root / "patterns" / "tokens.yaml").write_text(
        "apiVersion: spokehub.dev/v1alpha1\nkind: Pattern\nmetadata: {id: bench.tokens, "
        "owner: bench, license: MIT, version: 1.0.0}\nspec:\n  kind: design-tokens\n"
        "  resolver: tokens/resolver.json\n  sources: ['tokens/**/*.tokens.json']\n"
    )
    for theme in ("light", "dark"):  # plain folders for Style Dictionary (no resolver)
        folder = root / f"sd-{theme}"
        folder.mkdir()
        shutil.copy(tokens / "primitives.tokens.json", folder)
        shutil.copy(tokens / "themes" / f"{theme}.tokens.json", folder)
    return {"tokens_per_theme": n, "primitives": n_prim, "themed_aliases": n_sem, "by_type": counts}


def _time(
    cmd: list[str], cwd: Path, runs: int, env: dict[str, str] | None = None
) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=900)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            return {"error": (proc.stderr or proc.stdout)[-800:]}
        times.append(took)
    return {"median_s": statistics.median(times), "runs_s": times}


def incremental(hub: Path) -> dict[str, Any]:
    """In one process: first build, unchanged rebuild, one-token change."""
    from spokehub.patterns import BuildCache, build, load_hub

    cache = BuildCache()
    t0 = time.perf_counter()
    pattern = load_hub(hub).get("bench.tokens")  # a watch process loads once per change
    first = {p: build(pattern, p, cache=cache) for p in PLATFORMS}
    t1 = time.perf_counter()
    rendered_first = cache.fragments.misses
    pattern = load_hub(hub).get("bench.tokens")
    again = {p: build(pattern, p, cache=cache) for p in PLATFORMS}
    t2 = time.perf_counter()
    path = hub / "tokens" / "primitives.tokens.json"
    data = json.loads(path.read_text())
    data["palette"]["c1"]["$value"]["components"][0] = 0.123
    path.write_text(json.dumps(data, indent=1))
    before = cache.fragments.misses
    pattern = load_hub(hub).get("bench.tokens")
    changed = {p: build(pattern, p, cache=cache) for p in PLATFORMS}
    t3 = time.perf_counter()
    dependents = sum(
        1
        for t in load_hub(hub).get("bench.tokens").tokens().tokens.values()
        if "palette.c1" in t.refs
    )
    return {
        "first_build_s": t1 - t0,
        "unchanged_rebuild_s": t2 - t1,
        "unchanged_all_cached": all(r.cached for r in again.values()),
        "one_token_rebuild_s": t3 - t2,
        "renderings_first_build": rendered_first,
        "renderings_after_one_token_change": cache.fragments.misses - before,
        "direct_dependents_of_changed_token": dependents,
        "outputs_changed": sorted(p for p in PLATFORMS if changed[p].digest != first[p].digest),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    n, runs = (500, 1) if args.quick else (args.tokens, args.runs)
    figures: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load": os.getloadavg(),
        }
    }
    with tempfile.TemporaryDirectory(prefix="spokehub-patterns-bench-") as tmp_name:
        tmp = Path(tmp_name)
        hub = tmp / "hub"
        hub.mkdir()
        figures["input"] = make_hub(hub, n)
        env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp / "pyc")}
        spokehub_cmd = [
            sys.executable,
            "-c",
            SPOKEHUB_RUN,
            str(hub),
            str(tmp / "out-spokehub"),
            ",".join(PLATFORMS),
        ]
        subprocess.run(spokehub_cmd, env=env, check=True, capture_output=True)  # warm pyc
        figures["spokehub"] = {
            "platforms": list(PLATFORMS),
            "themes": 2,
            **_time(spokehub_cmd, tmp, runs, env),
        }
        figures["peers"] = peers(tmp, hub, runs, args.no_peers)
        figures["incremental"] = incremental(hub)
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def peers(tmp: Path, hub: Path, runs: int, skip: bool) -> dict[str, Any]:
    from tests.patterns.npm_peers import PeersUnavailable, ensure_peers

    if skip:
        return {"skipped": "--no-peers"}
    try:
        folder = ensure_peers()
    except PeersUnavailable as exc:
        return {"skipped": str(exc)}
    out: dict[str, Any] = {}
    script = folder / "sd-build.mjs"
    shutil.copy(ROOT / "tests" / "patterns" / "sd-build.mjs", script)
    pairs = ",".join(f"{hub / f'sd-{t}'}:{tmp / f'out-sd-{t}'}" for t in ("light", "dark"))
    out["style-dictionary-5"] = {
        "platforms": list(PLATFORMS),
        "themes": 2,
        "note": "markdown: SD has no docs format; json/flat instead",
        **_time(["node", str(script), pairs, ",".join(PLATFORMS)], folder, runs),
    }
    config = hub / "terrazzo.config.mjs"
    config.write_text(
        TERRAZZO_CONFIG.format(resolver="./tokens/resolver.json", out=str(tmp / "out-terrazzo"))
    )
    node_path = {**os.environ, "NODE_PATH": str(folder / "node_modules")}
    link = hub / "node_modules"
    if not link.exists():
        link.symlink_to(folder / "node_modules")
    out["terrazzo-2"] = {
        "platforms": ["css", "js"],
        "themes": 2,
        **_time([str(folder / "node_modules" / ".bin" / "tz"), "build"], hub, runs, node_path),
    }
    return out


def report(f: dict[str, Any]) -> None:
    base = f["spokehub"].get("median_s")
    print(
        f"input: {f['input']['tokens_per_theme']} tokens x 2 themes "
        f"({f['input']['primitives']} primitives, {f['input']['themed_aliases']} themed aliases)"
    )
    print(f"{'tool':<22}{'platforms':<40}{'median s':>10}{'vs spokehub':>14}")
    rows = [("spokehub", f["spokehub"]), *f["peers"].items()]
    for name, row in rows:
        if not isinstance(row, dict):
            print(f"{name:<22}{row}")
            continue
        if "median_s" not in row:
            print(f"{name:<22}{row.get('error', row)!s:.200}")
            continue
        ratio = f"{row['median_s'] / base:.2f}x" if base else "-"
        print(f"{name:<22}{','.join(row['platforms']):<40}{row['median_s']:>10.2f}{ratio:>14}")
    inc = f["incremental"]
    print(
        f"incremental (one process): first build {inc['first_build_s']:.2f}s, unchanged "
        f"rebuild {inc['unchanged_rebuild_s']:.2f}s (all cached: {inc['unchanged_all_cached']}),"
        f" one-token change {inc['one_token_rebuild_s']:.2f}s re-rendering "
        f"{inc['renderings_after_one_token_change']} of {inc['renderings_first_build']} token "
        f"renderings ({inc['direct_dependents_of_changed_token']} direct dependents; outputs "
        f"changed: {', '.join(inc['outputs_changed'])})"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
