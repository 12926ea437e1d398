"""The demo story: one hub, eight targets, a canary wave with analysis and a manual gate, then
a hand edit that drift detects and heals. Run it twice: the second run writes nothing.

``spokehub demo [--fail-canary]`` calls ``run_demo``.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from spokehub.distribution import service
from spokehub.distribution.demo.cms import CmsServer
from spokehub.distribution.demo.hubfiles import manifests, write_release
from spokehub.distribution.demo.webhook_sink import WebhookSink
from spokehub.distribution.plan import Plan
from spokehub.distribution.steps import context_for
from spokehub.runtime.client import Client

DIST = "tokens-to-apps"
SECRET = "whsec_ZGVtby1zaWduaW5nLXNlY3JldC0xMjM0NTY="
RELEASES = {
    "r1": ("1.0.0", None),
    "r2": ("1.0.1", [0.0, 0.35, 0.75]),
    "r3": ("1.0.2", [0.5, 0.1, 0.6]),
}


@dataclass
class DemoResult:
    """What happened, for the summary and the tests."""

    first_run: bool
    rollouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    drift: list[dict[str, Any]] = field(default_factory=list)
    drift_after: list[dict[str, Any]] = field(default_factory=list)
    writes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def prepare(hub: Path) -> bool:
    """Create the hub folder on the first run; True when it was created now."""
    first = not (hub / "releases" / "r1" / "patterns" / "hub.yaml").exists()
    for sub in (
        "targets/web",
        "targets/android",
        "targets/docs-site",
        "targets/registry",
        "services",
        "secrets",
    ):
        (hub / sub).mkdir(parents=True, exist_ok=True)
    (hub / "secrets" / "webhook-secret").write_text(SECRET + "\n")
    repo = hub / "targets" / "ios-app"
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q", "-b", "main")
        (repo / "README.md").write_text("# iOS app\n")
        _git(repo, "add", "README.md")
        _git(repo, "-c", "user.name=dev", "-c", "user.email=dev@localhost", "commit", "-qm", "init")
    if first:
        version, accent = RELEASES["r1"]
        write_release(hub, "r1", version, accent=accent)
    return first


async def run_demo(
    client: Client, folder: Path, *, fail_canary: bool = False, out: Console | None = None
) -> DemoResult:
    console = out or Console()
    started = time.perf_counter()
    hub = folder / "hub"  # the caller passes an absolute folder
    first = prepare(hub)
    result = DemoResult(first_run=first)
    with CmsServer(hub / "services" / "cms.json") as cms, WebhookSink(SECRET) as sink:
        (hub / "manifests").mkdir(exist_ok=True)
        (hub / "manifests" / "hub.yaml").write_text(manifests(cms.url, sink.url))
        console.print(f"[bold]hub[/bold] {hub}  (CMS {cms.url}, webhook receiver {sink.url})")
        if first:
            await _release(client, console, hub, "r1", result)
            version, accent = RELEASES["r2"]
            write_release(hub, "r2", version, accent=accent)
            console.print("\n[bold]edit[/bold] color.blue.600 and release r2 (1.0.1)")
            await _release(client, console, hub, "r2", result)
            await _drift_story(client, console, hub, cms, result)
        else:
            current = await service.current_release(client, DIST) or "r2"
            console.print(f"\n[bold]second run[/bold]: roll out {current} again and check drift")
            await _release(client, console, hub, current, result)
            result.drift = [d.to_dict() for d in await service.drift(client, hub, DIST)]
        if fail_canary:
            await _failing_canary(client, console, hub, cms, result)
        result.writes = _writes(hub, cms, sink)
    result.seconds = time.perf_counter() - started
    _summary(console, result, hub)
    return result


async def _release(
    client: Client, console: Console, hub: Path, release: str, result: DemoResult
) -> None:
    plan = await service.plan(client, hub, DIST, release)
    result.plans[release] = plan.to_dict()
    _print_plan(console, plan)
    handle = await service.start_rollout(client, hub, DIST, release, actor="demo")

    async def gate(name: str, run: Any) -> bool:
        console.print(
            f"  [yellow]manual gate[/yellow] {name}: approving as the demo "
            f"(yourself: spokehub approve {run.id})"
        )
        return True

    run = await service.drive(client, handle.id, gate)
    outcome = (
        run.result
        if isinstance(run.result, dict)
        else {"status": run.status.value, "reason": str(run.error)}
    )
    result.rollouts[release] = outcome
    _print_rollout(console, release, outcome)


def _print_plan(console: Console, plan: Plan) -> None:
    t = plan.totals()
    console.print(
        f"\n[bold]plan[/bold] {plan.distribution} {plan.release} ({plan.digest[:19]}): "
        f"{t['create']} to create, {t['update']} to update, {t['delete']} to delete, "
        f"{t['no-op']} unchanged"
    )
    for tp in plan.targets:
        if tp.changes() or tp.error:
            console.print(f"  {tp.target:<12} {tp.error or tp.summary()}")


def _print_rollout(console: Console, release: str, outcome: dict[str, Any]) -> None:
    colour = "green" if outcome.get("status") == "Succeeded" else "red"
    console.print(
        f"[bold]rollout[/bold] {release}: [{colour}]{outcome.get('status')}[/{colour}] "
        f"{outcome.get('reason', '')}"
    )
    for wave in outcome.get("waves", []):
        changed = sum(t["changed"] for t in wave["targets"].values())
        verdicts = ", ".join(
            f"{k.split('@')[0]} {v['verdict']}" for k, v in wave["analysis"].items()
        )
        console.print(
            f"  wave {wave['name']:<7} {len(wave['targets'])} targets, {changed} resources written"
            + (f"; analysis: {verdicts}" if verdicts else "")
        )
    if outcome.get("rolled_back"):
        console.print(f"  rolled back (newest first): {', '.join(outcome['rolled_back'])}")


async def _drift_story(
    client: Client, console: Console, hub: Path, cms: CmsServer, result: DemoResult
) -> None:
    css = hub / "targets" / "web" / "dist" / "tokens.css"
    css.write_text(css.read_text().replace("--space-md: 16px;", "--space-md: 18px; /* hotfix */"))
    cms.edit(
        "prod",
        "token/color-accent",
        {"name": "color.accent", "light": "#ff0000", "dark": "#ff0000"},
    )
    (hub / "targets" / "docs-site" / "docs" / "notes.md").write_text(
        "team notes (not from the hub)\n"
    )
    console.print(
        "\n[bold]hand edits[/bold]: web dist/tokens.css, CMS prod token/color-accent, "
        "a new docs/notes.md"
    )
    first = await service.drift(client, hub, DIST)
    result.drift = [d.to_dict() for d in first]
    for d in first:
        for r in d.resources:
            if r.state.value != "InSync":
                fixed = " -> corrected" if r.key in d.corrected else ""
                console.print(
                    f"  drift {d.target:<12} {r.key:<36} {r.state.value} (mode {d.mode}){fixed}"
                )
                if r.diff:
                    for line in r.diff.splitlines()[2:]:
                        if line.startswith(("+", "-")):
                            console.print(f"      {line}", style="dim")
    after = await service.drift(client, hub, DIST)
    result.drift_after = [d.to_dict() for d in after]
    bad = [d.target for d in after if d.drifted()]
    console.print(
        "  check again: "
        + ("all managed resources InSync" if not bad else "still drifted: " + ", ".join(bad))
    )


async def _failing_canary(
    client: Client, console: Console, hub: Path, cms: CmsServer, result: DemoResult
) -> None:
    version, accent = RELEASES["r3"]
    if not (hub / "releases" / "r3").exists():
        write_release(hub, "r3", version, accent=accent)
    cms.state.faults = {"entries": "drop"}
    console.print(
        "\n[bold]--fail-canary[/bold]: the CMS hides its entries, so content-smoke fails "
        "on the canary"
    )
    try:
        await _release(client, console, hub, "r3", result)
    finally:
        cms.state.faults = {}


def _writes(hub: Path, cms: CmsServer, sink: WebhookSink) -> dict[str, int]:
    ctx = context_for(str(hub), DIST)
    # What the adapters wrote (resources, not lockfiles), as the targets' own logs confirm:
    # the CMS counts stored changes, the receiver counts new deliveries.
    counts = {name: a.calls["write"] + a.calls["delete"] for name, a in ctx._adapters.items()}
    result_checks = {"cms server": cms.state.writes, "webhook receiver": len(sink.events)}
    counts.update({f"({k})": v for k, v in result_checks.items()})
    return counts


def _summary(console: Console, result: DemoResult, hub: Path) -> None:
    console.print()
    table = Table(title="what changed where", box=None, header_style="bold")
    table.add_column("target")
    for release in result.plans:
        table.add_column(release)
    names = sorted({t["target"] for p in result.plans.values() for t in p["targets"]})
    for name in names:
        row = [name]
        for p in result.plans.values():
            counts = next(t["counts"] for t in p["targets"] if t["target"] == name)
            row.append(f"+{counts['create']} ~{counts['update']} -{counts['delete']}")
        table.add_row(*row)
    console.print(table)
    healed = sorted({k for d in result.drift for k in d["corrected"]})
    off = ("Modified", "Missing", "Conflicting")
    res = [r for d in result.drift for r in d["resources"]]
    detected = sorted({r["key"] for r in res if r["state"] in off})
    told = sorted(
        {f"{r['key']} ({r['state']})" for r in res if r["state"] in ("Unmanaged", "Orphaned")}
    )
    console.print(
        f"drift: {len(detected)} resource(s) off ({', '.join(detected) or 'none'}); "
        f"healed: {', '.join(healed) or 'none'}; "
        f"reported, never touched: {', '.join(told) or 'none'}"
    )
    total = sum(v for k, v in result.writes.items() if not k.startswith("("))
    console.print(
        f"writes to targets in this run: {total} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(result.writes.items()) if v) or 'none'})"
    )
    console.print(f"done in {result.seconds:.1f}s. Run it again: it writes nothing.")
    console.print(
        "\n[bold]next[/bold]: spokehub serve, then open /ui/distributions (targets by state, "
        f"releases wave by wave, audit timeline, drift diffs) | spokehub dist status {DIST} "
        f"--hub {hub} | spokehub dist audit {DIST} --verify | "
        f"git -C {hub / 'targets/ios-app'} log --all --oneline\n"
        "(the demo's CMS and webhook receiver run only while the demo runs: `spokehub demo` "
        "again replays the story, writing nothing)"
    )
