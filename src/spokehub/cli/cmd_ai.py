"""``spokehub ai``: LLM spend and the calibration of confidence-routed decisions."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from spokehub.cli.support import console, print_json, run_with_client
from spokehub.ops import ai as ops_ai

ai_app = typer.Typer(help="LLM spend and decision calibration.", no_args_is_help=True)
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@ai_app.command("calibration")
def calibration_command(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="The workflow whose decisions to check.")],
    target: Annotated[
        float, typer.Option("--target", help="The precision the threshold must reach.")
    ] = 0.95,
    bins: Annotated[int, typer.Option("--bins", help="Confidence bins.")] = 10,
    name: Annotated[str | None, typer.Option("--name", help="Only decide(name=...).")] = None,
    as_json: AsJson = False,
) -> None:
    """Accuracy per confidence bin, expected calibration error, and a suggested threshold,
    from the decisions a human answered."""
    report = run_with_client(
        ctx, lambda c: ops_ai.calibrate(c, workflow, name=name, bins=bins, target=target)
    )
    if as_json:
        print_json(report.to_dict())
        return
    out = console()
    if report.decisions == 0:
        out.print(f"no decision of {workflow} has a human outcome yet", style="dim")
        return
    table = Table("confidence", "decisions", "mean confidence", "accuracy")
    for b in report.bins:
        table.add_row(
            f"{b.low:.1f}-{b.high:.1f}", str(b.count), f"{b.confidence:.3f}", f"{b.accuracy:.3f}"
        )
    out.print(table)
    out.print(
        f"{report.decisions} decisions, accuracy {report.accuracy:.3f}, "
        f"expected calibration error {report.ece:.3f}"
    )
    if report.threshold is None:
        out.print(f"no threshold reaches precision {target}", style="yellow")
    else:
        out.print(
            f"suggested threshold for precision {target}: {report.threshold} "
            f"(automates {report.coverage:.0%} of decisions)"
        )


@ai_app.command("costs")
def costs_command(
    ctx: typer.Context,
    days: Annotated[float, typer.Option("--days", help="How many days back.")] = 30,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this one.")] = None,
    as_json: AsJson = False,
) -> None:
    """LLM spend: total, per UTC day, per model and per workflow."""
    report = run_with_client(ctx, lambda c: ops_ai.spend(c, days=days, workflow=workflow))
    if as_json:
        print_json(report.to_dict())
        return
    out = console()
    total = report.total
    out.print(
        f"${total.cost:.6f} in {total.calls} call(s), {total.prompt_tokens}+"
        f"{total.completion_tokens} tokens, {total.cache_hits} cache hit(s), last {days:g} day(s)"
    )
    for title, rows in (("day", report.by_day), ("model", report.by_model)):
        table = Table(title, "USD", "calls", "tokens")
        for s in rows:
            tokens = str(s.prompt_tokens + s.completion_tokens)
            table.add_row(s.key, f"{s.cost:.6f}", str(s.calls), tokens)
        out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(ai_app, name="ai")
