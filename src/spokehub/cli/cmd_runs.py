"""Looking at runs and steering them: ``runs list|show``, signal, approve, reject, cancel, fork."""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer

from spokehub import ops
from spokehub.cli.render import run_detail, runs_table
from spokehub.cli.support import (
    cli_errors,
    console,
    parse_json,
    print_json,
    run_with_client,
    state,
)
from spokehub.runtime.client import Client
from spokehub.runtime.loader import import_app
from spokehub.store.base import RunRecord
from spokehub.types import RunStatus

runs_app = typer.Typer(help="List runs and show one run's timeline.", no_args_is_help=True)

RunId = Annotated[str, typer.Argument(metavar="ID", help="The run id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ApprovalName = Annotated[
    str | None, typer.Option("--name", help="Which approval, when the run waits for several.")
]
Comment = Annotated[str | None, typer.Option("--comment", help="Why; recorded in the ledger.")]
By = Annotated[
    str | None,
    typer.Option("--by", help="Who decides (default: your OS user); checked against assignees."),
]


def _decider(by: str | None) -> str:
    """``--by``, else the OS user running the command: a decision always names someone."""
    if by is not None:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return f"uid-{os.getuid()}"


@runs_app.command("list")
def list_command(
    ctx: typer.Context,
    status: Annotated[
        RunStatus | None, typer.Option("--status", case_sensitive=False, help="Only this status.")
    ] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this workflow.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs.")] = 50,
    as_json: AsJson = False,
) -> None:
    """The newest runs first."""

    async def body(client: Client) -> tuple[list[RunRecord], float]:
        runs = await ops.list_runs(client, status=status, workflow=workflow, limit=limit)
        return runs, client.clock.now()

    runs, now = run_with_client(ctx, body)
    if as_json:
        print_json([{**r.to_dict(), "duration": ops.run_duration(r, now)} for r in runs])
    elif not runs:
        console().print("no runs", style="dim")
    else:
        console().print(runs_table(runs, now))


@runs_app.command("show")
def show_command(ctx: typer.Context, run_id: RunId, as_json: AsJson = False) -> None:
    """One run: its input, outcome, what it waits for, and a timeline of its calls."""
    view = run_with_client(ctx, lambda client: ops.show_run(client, run_id))
    if as_json:
        print_json(view.to_dict())
    else:
        console().print(run_detail(view, db_flag=state(ctx).db_flag()))


def signal_command(
    ctx: typer.Context,
    run_id: RunId,
    name: Annotated[str, typer.Argument(help="The signal name the workflow waits for.")],
    payload: Annotated[
        str, typer.Option("--payload", "-p", help="JSON value delivered to the workflow.")
    ] = "null",
) -> None:
    """Send a named signal (with a JSON payload) to a run."""
    value = parse_json(payload, "--payload")
    run_with_client(ctx, lambda client: ops.send_signal(client, run_id, name, value))
    typer.echo(f"sent signal {name!r} to run {run_id}")


def approve_command(
    ctx: typer.Context,
    run_id: RunId,
    name: ApprovalName = None,
    comment: Comment = None,
    by: By = None,
    as_json: AsJson = False,
) -> None:
    """Approve the approval a run waits for."""
    decided = run_with_client(
        ctx, lambda client: ops.approve(client, run_id, name=name, comment=comment, by=_decider(by))
    )
    _decided(decided, as_json)


def reject_command(
    ctx: typer.Context,
    run_id: RunId,
    name: ApprovalName = None,
    comment: Comment = None,
    by: By = None,
    as_json: AsJson = False,
) -> None:
    """Reject the approval a run waits for (the workflow sees ApprovalRejected)."""
    decided = run_with_client(
        ctx, lambda client: ops.reject(client, run_id, name=name, comment=comment, by=_decider(by))
    )
    _decided(decided, as_json)


def _decided(decided: ops.Decided, as_json: bool) -> None:
    if as_json:
        print_json(decided.to_dict())
        return
    verb = "approved" if decided.approved else "rejected"
    if decided.outcome == "pending":
        typer.echo(
            f"{verb} {decided.name!r} on run {decided.run_id}: {decided.approvals} of "
            f"{decided.quorum} approvals, still waiting"
        )
        return
    typer.echo(f"{verb} {decided.name!r} on run {decided.run_id}")


def cancel_command(ctx: typer.Context, run_id: RunId, as_json: AsJson = False) -> None:
    """Cancel a run; compensations of its completed steps run before it ends."""
    run = run_with_client(ctx, lambda client: ops.cancel(client, run_id))
    if as_json:
        print_json(run.to_dict())
    elif run.status is RunStatus.CANCELLED:
        typer.echo(f"run {run_id} cancelled")
    else:
        typer.echo(
            f"cancellation requested for run {run_id}; it stops at its next step or wait, "
            "after undoing completed steps"
        )


def fork_command(
    ctx: typer.Context,
    run_id: RunId,
    from_step: Annotated[
        int, typer.Option("--from-step", min=1, help="First call to execute again (from 1).")
    ],
    new_id: Annotated[str | None, typer.Option("--id", help="Id of the new run.")] = None,
    apps: Annotated[
        list[str] | None,
        typer.Option("--app", help="Module or .py file with the workflow (records its version)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Start a new run that replays ID's calls before --from-step and executes the rest anew.

    Prints the new run's id; a worker executes it.
    """
    with cli_errors():
        for ref in apps or ():
            import_app(ref)
    run = run_with_client(
        ctx, lambda client: ops.fork(client, run_id, from_step=from_step, new_run_id=new_id)
    )
    if as_json:
        print_json(run.to_dict())
    else:
        typer.echo(run.id)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
    app.command("signal")(signal_command)
    app.command("approve")(approve_command)
    app.command("reject")(reject_command)
    app.command("cancel")(cancel_command)
    app.command("fork")(fork_command)
