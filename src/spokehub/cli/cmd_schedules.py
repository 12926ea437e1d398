"""``spokehub schedules add|list|pause|resume|remove``: cron schedules that start runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from spokehub.cli.support import (
    EXIT_USAGE,
    cli_errors,
    console,
    fail,
    parse_json_object,
    print_json,
    run_with_client,
)
from spokehub.runtime.client import Client

schedules_app = typer.Typer(
    help="Cron schedules: each tick starts one run (workers fire them).",
    no_args_is_help=True,
)


def _store() -> Any:
    try:
        from spokehub.integrations import schedule_store
    except ImportError as exc:  # pragma: no cover - the extra is part of dev installs
        fail(f"{exc}; install the extra: pip install 'spokehub[integrations]'", EXIT_USAGE)
    return schedule_store


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _show(rows: list[Any], as_json: bool) -> None:
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    if not rows:
        console().print(
            "no schedules; add one with: "
            "spokehub schedules add NAME --workflow W --cron '0 * * * *'"
        )
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("name", "workflow", "cron", "timezone", "catch-up", "state", "next fires (UTC)"):
        table.add_column(column)
    for r in rows:
        d = r.to_dict()
        state = "paused" if r.paused else "active"
        nxt = ", ".join(_when(t) for t in d["next_fire_times"]) or "-"
        s = r.schedule
        table.add_row(s.name, s.workflow, s.cron, s.timezone, s.catchup, state, nxt)
    console().print(table)


@schedules_app.command("add")
def add_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The schedule's name (unique).")],
    workflow: Annotated[str, typer.Option("--workflow", help="The workflow to start.")],
    cron: Annotated[str, typer.Option("--cron", help="Cron expression, e.g. '*/5 * * * *'.")],
    timezone: Annotated[str, typer.Option("--timezone", help="IANA time zone.")] = "UTC",
    input_json: Annotated[
        str, typer.Option("--input", help="The runs' input, a JSON object of arguments.")
    ] = "{}",
    catchup: Annotated[
        str, typer.Option("--catchup", help="After downtime: skip, latest or all.")
    ] = "skip",
    max_catchup: Annotated[
        int, typer.Option("--max-catchup", min=1, help="Ticks 'all' catches up at most.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Add (or change) a schedule; it is checked here, before anything is stored."""
    store = _store()
    from spokehub.integrations.schedules import Schedule

    data = parse_json_object(input_json, "--input")
    with cli_errors():
        schedule = Schedule(
            name=name,
            workflow=workflow,
            cron=cron,
            timezone=timezone,
            input=data,
            catchup=catchup,  # type: ignore[arg-type]
            max_catchup=max_catchup,
        )

    async def save(client: Client) -> Any:
        await client.ensure_schema()
        return await store.save(client.store, schedule, client.clock.now(), "cli")

    _show([run_with_client(ctx, save)], as_json)


@schedules_app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Every schedule with its next fire times."""
    store = _store()

    async def rows(client: Client) -> Any:
        await client.ensure_schema()
        return await store.list_all(client.store)

    _show(run_with_client(ctx, rows), as_json)


def _set_paused(ctx: typer.Context, name: str, paused: bool, as_json: bool) -> None:
    store = _store()

    async def change(client: Client) -> Any:
        await client.ensure_schema()
        return await store.set_paused(client.store, name, paused, client.clock.now())

    _show([run_with_client(ctx, change)], as_json)


@schedules_app.command("pause")
def pause_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The schedule's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Stop starting runs until resumed."""
    _set_paused(ctx, name, True, as_json)


@schedules_app.command("resume")
def resume_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The schedule's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Start runs again from the next tick (ticks missed while paused are skipped)."""
    _set_paused(ctx, name, False, as_json)


@schedules_app.command("remove")
def remove_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The schedule's name.")]
) -> None:
    """Delete a schedule (runs it started stay)."""
    store = _store()

    async def drop(client: Client) -> None:
        await client.ensure_schema()
        await store.remove(client.store, name)

    run_with_client(ctx, drop)
    console().print(f"schedule {name} removed")


def register(app: typer.Typer) -> None:
    app.add_typer(schedules_app, name="schedules")
