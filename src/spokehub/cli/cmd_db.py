"""``spokehub db upgrade``, ``db prune`` and ``db copy``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from spokehub import ops
from spokehub.cli.support import (
    EXIT_USAGE,
    cli_errors,
    console,
    fail,
    print_json,
    run_with_client,
    state,
)
from spokehub.ops import db as ops_db

db_app = typer.Typer(
    help="Database upkeep: migrations, retention, moving to another database.",
    no_args_is_help=True,
)


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


@db_app.command("copy")
def copy_command(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Option("--from", metavar="URL", help="The database to copy (e.g. sqlite:///…).")
    ],
    target: Annotated[
        str,
        typer.Option("--to", metavar="URL", help="An empty database (e.g. postgresql://…)."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Copy runs with their whole history to an empty database (stop the workers first)."""
    settings = state(ctx).settings()
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console(stderr=True),
        transient=as_json,
        disable=as_json,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=max(total, 1))
            bar.update(tasks[table], completed=done if total else 1)

        with cli_errors():
            result = asyncio.run(ops.copy(source, target, settings=settings, progress=progress))
    if as_json:
        print_json(result.to_dict())
        return
    copied = ", ".join(f"{n} {table}" for table, n in result.rows.items())
    typer.echo(f"copied {copied} from {result.source} to {result.target}")


@db_app.command("rotate-keys")
def rotate_keys_command(
    ctx: typer.Context,
    batch: Annotated[
        int, typer.Option("--batch", min=1, help="Payloads re-sealed per transaction.")
    ] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Re-encrypt stored payloads with the first key of SPOKEHUB_ENCRYPTION_KEYS.

    Put the new key first and keep the old ones listed until this has run; then the old ones
    can go. Payloads stored before encryption was turned on are encrypted too.
    """
    settings = state(ctx).settings()
    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console(stderr=True),
        transient=as_json,
        disable=as_json,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(column: str, done: int, total: int) -> None:
            if column not in tasks:
                tasks[column] = bar.add_task(column, total=max(total, 1))
            bar.update(tasks[column], completed=done if total else 1)

        with cli_errors():
            result = asyncio.run(
                ops_db.rotate_keys(settings=settings, batch=batch, progress=progress)
            )
    if as_json:
        print_json({"resealed": result})
        return
    total = sum(result.values())
    typer.echo(f"re-encrypted {total} payload(s) with the current key")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
