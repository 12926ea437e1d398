"""``spokehub db upgrade`` and ``spokehub db prune``."""

from __future__ import annotations

from typing import Annotated

import typer

from spokehub import ops
from spokehub.cli.support import EXIT_USAGE, fail, print_json, run_with_client

db_app = typer.Typer(help="Database upkeep: migrations and retention.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Apply the schema migrations the database has not seen yet."""
    result = run_with_client(ctx, ops.upgrade)
    if as_json:
        print_json(result.to_dict())
    elif result.applied:
        for name in result.applied:
            typer.echo(f"applied {name}")
        typer.echo(f"schema is at version {result.version}")
    else:
        typer.echo(f"schema is up to date (version {result.version})")


def _duration(text: str) -> float:
    try:
        return ops.parse_duration(text)
    except ValueError as exc:
        fail(f"--older-than: {exc}", EXIT_USAGE)


@db_app.command("prune")
def prune_command(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option("--older-than", help="Delete runs finished longer ago than this: 30d, 12h."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Delete finished runs (and their ledgers) older than --older-than, then reclaim space."""
    seconds = _duration(older_than)
    result = run_with_client(ctx, lambda client: ops.prune(client, older_than=seconds))
    if as_json:
        print_json(result.to_dict())
        return
    typer.echo(
        f"pruned {result.runs} run(s), {result.events} event(s), {result.blobs} blob(s) "
        f"finished more than {older_than} ago"
    )
    typer.echo(f"database: {_bytes(result.bytes_before)} → {_bytes(result.bytes_after)}")


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
