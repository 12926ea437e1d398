"""``spokehub audit verify|export``: check the audit trail's hash chain, export it as JSONL.

``verify`` exits 0 when the chain holds and 1 when it is broken, naming the first bad entry.
"""

from __future__ import annotations

from typing import Annotated

import typer

from spokehub.cli.support import (
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    console,
    fail,
    print_json,
    run_with_client,
)
from spokehub.governance.audit import AuditEntry, Verification, jsonl
from spokehub.ops.audit import audit_log
from spokehub.ops.durations import parse_duration
from spokehub.runtime.client import Client

audit_app = typer.Typer(
    help="The tamper-evident audit trail: verify its hash chain, export it.",
    no_args_is_help=True,
)


@audit_app.command("verify")
def verify_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Recompute the chain; name the first edited, deleted, inserted or moved entry."""

    async def verify(client: Client) -> Verification:
        await client.ensure_schema()
        return await audit_log(client).verify()

    found = run_with_client(ctx, verify)
    if as_json:
        print_json(found.to_dict())
    elif found.ok:
        console().print(f"ok: {found.entries} entries, head {found.head}")
    else:
        typer.echo(f"BROKEN at entry {found.bad_seq}: {found.problem}", err=True)
        typer.echo(f"{found.entries} entries verified before it; head {found.head}", err=True)
    if not found.ok:
        raise typer.Exit(EXIT_RUN_FAILED)


@audit_app.command("export")
def export_command(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only entries newer than this: 24h, 7d, or epoch seconds."),
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run's entries.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this actor's.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only actions starting with this.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl (one entry per line).")] = "jsonl",
) -> None:
    """Print entries in chain order, one JSON object per line."""
    if fmt != "jsonl":
        fail(f"--format {fmt!r} is not supported; use --format jsonl", EXIT_USAGE)
    cutoff: float | None = None
    if since is not None:
        try:
            cutoff = float(since)
        except ValueError:
            try:
                cutoff = -parse_duration(since)
            except ValueError as exc:
                fail(f"--since {since!r}: {exc}", EXIT_USAGE)

    async def export(client: Client) -> list[AuditEntry]:
        await client.ensure_schema()
        start = cutoff
        if start is not None and start < 0:  # a duration: back from now
            start = client.clock.now() + start
        return await audit_log(client).entries(
            since=start, run_id=run_id, actor=actor, action=action
        )

    for line in jsonl(run_with_client(ctx, export)):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
