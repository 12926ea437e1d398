"""``spokehub dist plan|rollout|rollback|resume|drift|release|status|audit``, ``spokehub demo``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from spokehub.cli.support import EXIT_USAGE, console, fail, print_json, run_with_client
from spokehub.runtime.client import Client

dist_app = typer.Typer(
    help="Distribute patterns to targets: plan, roll out in waves, roll back, heal drift.",
    no_args_is_help=True,
)

Hub = Annotated[
    str,
    typer.Option("--hub", envvar="SPOKEHUB_HUB", help="The hub folder (manifests/ inside)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
EXIT_CHANGES = 2  # like `terraform plan -detailed-exitcode`: changes present / drift found

_SIGN = {"create": "+", "update": "~", "delete": "-", "conflict": "!", "no-op": "="}
_COLOUR = {"create": "green", "update": "yellow", "delete": "red", "conflict": "magenta"}


def _need_extra() -> None:
    """The distribution commands need the ``distribution`` extra; say so instead of a trace."""
    import importlib.util

    missing = [
        m
        for m in ("yaml", "httpx", "cel_expr_python", "jsonschema_rs", "coloraide")
        if not importlib.util.find_spec(m)
    ]
    if missing:
        fail(
            f"spokehub dist needs {', '.join(missing)}: pip install 'spokehub[distribution]'",
            EXIT_USAGE,
        )


@dist_app.callback()
def _setup() -> None:
    _need_extra()


def print_plan(plan: Any, out: Console, *, diffs: bool = True) -> None:
    out.print(f"[bold]{plan.distribution}[/bold] release {plan.release}  plan {plan.digest}")
    for tp in plan.targets:
        out.print(f"\n  [bold]# {tp.target}[/bold]")
        if tp.error:
            out.print(f"  [red]Degraded: {tp.error}[/red]")
            continue
        for op in tp.ops:
            action = op.action.value
            if action == "no-op":
                continue
            colour = _COLOUR.get(action, "white")
            arrow = f"{(op.before or '-')[:19]} -> {(op.after or '-')[:19]}"
            note = f"  ({op.reason})" if op.reason else ""
            out.print(f"  [{colour}]{_SIGN[action]} {action:<8} {op.key}[/{colour}]  {arrow}{note}")
            if diffs and op.key in tp.diffs:
                for line in tp.diffs[op.key].splitlines()[:40]:
                    out.print(f"      {line}", style=_line_style(line), markup=False)
        if tp.prune_needs_approval:
            out.print(
                "  [yellow]deletions here wait for an approval (protect.prune: confirm)[/yellow]"
            )
        for key in tp.unmanaged:
            out.print(f"  [dim]? unmanaged {key} (not ours: never touched)[/dim]")
        for key in tp.conflicting:
            out.print(f"  [magenta]! another owner's {key}[/magenta]")
        out.print(f"  {tp.summary()}")
    t = plan.totals()
    out.print(
        f"\n[bold]Plan:[/bold] {t['create']} to create, {t['update']} to update, "
        f"{t['delete']} to delete, {t['no-op']} unchanged, {t['conflict']} in conflict."
    )


def _line_style(line: str) -> str:
    if line.startswith("+") and not line.startswith("+++"):
        return "green"
    if line.startswith("-") and not line.startswith("---"):
        return "red"
    return "dim"


@dist_app.command("plan")
def plan_command(
    ctx: typer.Context,
    distribution: Annotated[str, typer.Argument(help="The Distribution's name.")],
    release: Annotated[str | None, typer.Argument(help="Release (default: current).")] = None,
    hub: Hub = ".",
    as_json: AsJson = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0 no changes, 2 changes, 1 error.")
    ] = False,
    no_diff: Annotated[bool, typer.Option("--no-diff", help="Leave out the diffs.")] = False,
) -> None:
    """Show what a rollout would change at every target. Writes nothing."""
    from spokehub.distribution import service

    found = run_with_client(ctx, lambda c: service.plan(c, hub, distribution, release))
    if as_json:
        print_json(found.to_dict())
    else:
        print_plan(found, console(), diffs=not no_diff)
    if found.has_errors():
        raise typer.Exit(1)
    if detailed_exitcode and found.has_changes():
        raise typer.Exit(EXIT_CHANGES)


def _report(run: Any, out: Console, as_json: bool) -> None:
    from spokehub.distribution.service import pending_approval

    result = run.result if isinstance(run.result, dict) else None
    waiting = pending_approval(run)
    if as_json:
        print_json(
            {"run_id": run.id, "status": run.status.value, "result": result, "waiting_for": waiting}
        )
    elif waiting:
        out.print(
            f"run {run.id} waits for approval [bold]{waiting}[/bold]: "
            f"spokehub approve {run.id} --name '{waiting}', then spokehub dist resume {run.id}"
        )
    elif result is None:
        fail(f"run {run.id} {run.status.value}: {run.error}", 1)
    else:
        _print_outcome(out, result)
    if waiting:
        return
    if result is None or result.get("status") != "Succeeded":
        if result is not None and not as_json:
            typer.echo(f"error: {result.get('status')}: {result.get('reason')}", err=True)
        raise typer.Exit(1)


def _print_outcome(out: Console, result: dict[str, Any]) -> None:
    colour = "green" if result["status"] == "Succeeded" else "red"
    out.print(f"[{colour}]{result['status']}[/{colour}] {result.get('reason', '')}")
    for wave in result.get("waves", []):
        out.print(f"  wave {wave['name']}")
        for name, t in wave["targets"].items():
            out.print(f"    {name:<14} {t['changed']} written  {t['health']}")
        for key, a in wave["analysis"].items():
            out.print(f"    analysis {key}: {a['verdict']} {a['phases']}")
    if result.get("rolled_back"):
        out.print(f"  rolled back: {', '.join(result['rolled_back'])}")


@dist_app.command("rollout")
def rollout_command(
    ctx: typer.Context,
    distribution: Annotated[str, typer.Argument(help="The Distribution's name.")],
    release: Annotated[str, typer.Argument(help="The release to promote.")],
    hub: Hub = ".",
    plan_digest: Annotated[
        str | None, typer.Option("--plan", help="Refuse unless the plan still has this digest.")
    ] = None,
    retry: Annotated[bool, typer.Option("--retry", help="Retry a release that failed.")] = False,
    run_id: Annotated[str | None, typer.Option("--id", help="Run id (idempotent).")] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Only start; a worker runs it.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Promote a release wave by wave as one durable run (resumes after a crash)."""
    from spokehub.distribution import service

    async def body(c: Client) -> Any:
        h = await service.start_rollout(
            c, hub, distribution, release, retry=retry, expect_plan=plan_digest, run_id=run_id
        )
        if no_wait:
            return h.id
        return await service.drive(c, h.id)

    outcome = run_with_client(ctx, body)
    if isinstance(outcome, str):
        typer.echo(outcome)
        return
    _report(outcome, console(), as_json)


@dist_app.command("resume")
def resume_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The rollout's run id.")],
    as_json: AsJson = False,
) -> None:
    """Drive a rollout run on from where it is (after an approval, or after a crash)."""
    from spokehub.distribution import service

    _report(run_with_client(ctx, lambda c: service.drive(c, run_id)), console(), as_json)


@dist_app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    distribution: Annotated[str, typer.Argument(help="The Distribution's name.")],
    to: Annotated[str, typer.Option("--to", help="The earlier release to go back to.")],
    hub: Hub = ".",
    reason: Annotated[str, typer.Option("--reason", help="Recorded in the audit trail.")] = "",
    as_json: AsJson = False,
) -> None:
    """Promote an earlier good release; inside rollbackWindow analysis is skipped."""
    from spokehub.distribution import service

    async def body(c: Client) -> Any:
        h = await service.rollback(c, hub, distribution, to, reason=reason)
        return await service.drive(c, h.id)

    _report(run_with_client(ctx, body), console(), as_json)


@dist_app.command("drift")
def drift_command(
    ctx: typer.Context,
    distribution: Annotated[str, typer.Argument(help="The Distribution's name.")],
    hub: Hub = ".",
    no_heal: Annotated[
        bool, typer.Option("--no-heal", help="Only report, whatever the targets' modes say.")
    ] = False,
    schedule: Annotated[
        bool,
        typer.Option(
            "--schedule",
            help="Register one schedule per target from its drift.interval (workers run them).",
        ),
    ] = False,
    unschedule: Annotated[
        bool, typer.Option("--unschedule", help="Remove the distribution's drift schedules.")
    ] = False,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            help="With --schedule: the interval of targets without drift.interval (default "
            "10m). Alone: start a durable watch, a check every DURATION.",
        ),
    ] = None,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Checks of the watch.")] = 6,
    as_json: AsJson = False,
) -> None:
    """Check every target now as one durable run; exit 2 when drift remains.

    ``--schedule`` registers the drift schedules instead (``spokehub worker --app
    spokehub.distribution`` starts a check per tick); ``--unschedule`` removes them.
    """
    from spokehub.distribution import drift_schedule, service
    from spokehub.distribution.manifests import seconds

    if schedule or unschedule:
        _drift_schedules(ctx, distribution, hub, unschedule, every, as_json)
        return
    if every is not None:
        interval = seconds(every, 600.0)
        handle = run_with_client(
            ctx,
            lambda c: service.start_watch(
                c, hub, distribution, every=interval, rounds=rounds, heal=not no_heal
            ),
        )
        typer.echo(handle.id)
        return

    run = run_with_client(
        ctx, lambda c: drift_schedule.check_now(c, hub, distribution, heal=not no_heal)
    )
    if not isinstance(run.result, dict):
        fail(f"drift run {run.id} {run.status.value}: {run.error}", 1)
    reports = run.result["targets"]
    if as_json:
        print_json(reports)
    else:
        _print_drift(reports, console())
    if run.result["remaining"]:
        raise typer.Exit(EXIT_CHANGES)


@dist_app.command("release")
def release_command(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(help="A recorded release: id, digest, prefix or latest.")
    ] = "latest",
    patterns: Annotated[
        Path,
        typer.Option("--patterns", help="The patterns hub the release was recorded from."),
    ] = Path("."),
    hub: Hub = ".",
    as_json: AsJson = False,
) -> None:
    """Freeze a release recorded by `spokehub patterns release` into the hub's releases/."""
    from spokehub.distribution.releases import freeze

    async def body(c: Client) -> Any:
        await c.ensure_schema()
        return await freeze(c.store, patterns, Path(hub), ref)

    frozen = run_with_client(ctx, body)
    if as_json:
        print_json(frozen.to_dict())
        return
    what = "frozen" if frozen.written else "already frozen, unchanged"
    typer.echo(f"release {frozen.release} {what} in {frozen.folder} (from {frozen.source})")
    typer.echo(f"roll it out: spokehub dist rollout DISTRIBUTION {frozen.release} --hub {hub}")


def _print_drift(reports: list[dict[str, Any]], out: Console) -> None:
    for r in reports:
        error = "  " + r["error"] if r["error"] else ""
        out.print(f"[bold]{r['target']}[/bold] ({r['mode']}) {r['state']}{error}")
        for res in r["resources"]:
            if res["state"] == "InSync":
                continue
            tail = f" ignored ({res['ignored']})" if res["ignored"] else ""
            tail += " -> corrected" if res["key"] in r["corrected"] else ""
            out.print(f"  {res['state']:<12} {res['key']}{tail}")
            for line in res["diff"].splitlines()[:20]:
                out.print(f"      {line}", style=_line_style(line), markup=False)
        for proposal in r.get("adoptions", []):
            where = proposal.get("branch") or proposal["patch"]
            why = f" ({proposal['reason']})" if proposal.get("reason") else ""
            out.print(f"  proposed {proposal['kind']} change: {where}{why}", markup=False)


def _drift_schedules(
    ctx: typer.Context,
    distribution: str,
    hub: str,
    remove: bool,
    every: str | None,
    as_json: bool,
) -> None:
    from spokehub.distribution import drift_schedule
    from spokehub.distribution.manifests import seconds

    if remove:
        names = run_with_client(ctx, lambda c: drift_schedule.unregister(c, distribution))
        if as_json:
            print_json(names)
        else:
            typer.echo(f"removed {len(names)} drift schedule(s)")
        return
    default = seconds(every, drift_schedule.DEFAULT_INTERVAL)
    found = run_with_client(
        ctx, lambda c: drift_schedule.register(c, hub, distribution, default=default)
    )
    if as_json:
        print_json([s.to_dict() for s in found])
        return
    for s in found:
        typer.echo(f"{s.schedule.name}  {s.schedule.cron}  (every {s.period:g}s)")
    typer.echo("a worker starts them: spokehub worker --app spokehub.distribution")


@dist_app.command("status")
def status_command(
    ctx: typer.Context,
    distribution: Annotated[str, typer.Argument(help="The Distribution's name.")],
    hub: Hub = ".",
    as_json: AsJson = False,
) -> None:
    """Per target: release, sync state, health, last drift check; and the promotions."""
    from rich.table import Table

    from spokehub.distribution import service

    found = run_with_client(ctx, lambda c: service.status(c, hub, distribution))
    if as_json:
        print_json(found)
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("target", "adapter", "release", "sync", "health", "resources", "last drift"):
        table.add_column(column)
    for t in found["targets"]:
        drift = (t["last_drift"] or {}).get("state", "-")
        table.add_row(
            t["target"],
            t["adapter"],
            t["release"] or "-",
            t["sync"],
            t["health"],
            str(t["resources"]),
            drift,
        )
    out = console()
    out.print(table)
    for p in found["promotions"]:
        out.print(f"  {p['release']}: {p['status']} {p['detail'].get('reason', '')}")


@dist_app.command("audit")
def audit_command(
    ctx: typer.Context,
    distribution: Annotated[str, typer.Argument(help="The Distribution's name.")],
    release: Annotated[str | None, typer.Option("--release", help="Only this release.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Recompute the hash chain.")] = False,
    as_json: AsJson = False,
) -> None:
    """The audit timeline (policy decisions, plans, applies, measurements, gates, drift)."""
    from spokehub.distribution import service

    if verify:
        ok, count, problem = run_with_client(ctx, lambda c: _verify(c))
        typer.echo(f"audit chain: {count} entries, {'valid' if ok else 'BROKEN: ' + problem}")
        if not ok:
            raise typer.Exit(1)
        return
    entries = run_with_client(ctx, lambda c: service.timeline(c, distribution, release))
    if as_json:
        print_json(entries)
        return
    for e in entries:
        detail = json.dumps(e["detail"], sort_keys=True)
        typer.echo(
            f"{e['seq']:>5} {e['release']:<8} {e['target'] or '-':<12} {e['kind']:<18} "
            + detail[:140]
        )


async def _verify(c: Client) -> tuple[bool, int, str]:
    from spokehub.distribution import audit

    await c.ensure_schema()
    return await audit.verify(c.store)


def demo_command(
    ctx: typer.Context,
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the demo hub and targets live.")
    ] = Path(".spokehub/demo"),
    fail_canary: Annotated[
        bool,
        typer.Option("--fail-canary", help="Make the canary's analysis fail: watch a rollback."),
    ] = False,
) -> None:
    """Distribute design tokens and an API spec to 8 targets, offline, in seconds."""
    _need_extra()
    from spokehub.distribution.demo.scenario import run_demo

    where = Path(os.path.abspath(folder))
    result = run_with_client(ctx, lambda c: run_demo(c, where, fail_canary=fail_canary))
    bad = [r for r, o in result.rollouts.items() if o.get("status") != "Succeeded"]
    if bad and not fail_canary:
        sys.exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(dist_app, name="dist")
    app.command("demo")(demo_command)
