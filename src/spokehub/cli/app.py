"""The ``spokehub`` command: run workflows, work queues, inspect and steer runs, keep the database.

Every command opens the database named by ``--db`` (else ``SPOKEHUB_DATABASE_URL``, else
``.spokehub/spokehub.db`` in the current folder), does one use case from ``spokehub.ops`` and
exits with a code that scripts can test (see ``EXIT_CODES_HELP``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from spokehub import __version__
from spokehub.cli import (
    cmd_ai,
    cmd_approvals,
    cmd_audit,
    cmd_contracts,
    cmd_db,
    cmd_dist,
    cmd_patterns,
    cmd_policy,
    cmd_run,
    cmd_runs,
    cmd_schedules,
    cmd_serve,
    cmd_tokens,
)
from spokehub.cli.support import EXIT_CODES_HELP, CliState

app = typer.Typer(
    name="spokehub",
    help="Durable workflows on SQLite or PostgreSQL: run them, work their queues, inspect and "
    "steer runs.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spokehub {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="Database URL or path (default: $SPOKEHUB_DATABASE_URL, "
            "else .spokehub/spokehub.db).",
        ),
    ] = None,
    unsafe_durability: Annotated[
        bool,
        typer.Option(
            "--unsafe-durability",
            help="Accept a PostgreSQL server with fsync or synchronous_commit off "
            "(throwaway databases only: a crash can lose committed steps).",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = CliState(db=db, unsafe_durability=unsafe_durability)


app.command("run", epilog=EXIT_CODES_HELP)(cmd_run.run_command)
app.command("worker")(cmd_run.worker_command)
cmd_runs.register(app)
cmd_db.register(app)
app.command("serve")(cmd_serve.serve_command)
cmd_tokens.register(app)
cmd_policy.register(app)
cmd_audit.register(app)
cmd_approvals.register(app)
cmd_contracts.register(app)
cmd_schedules.register(app)
cmd_ai.register(app)
cmd_patterns.register(app)
cmd_dist.register(app)


def main() -> None:
    """The console script ``spokehub``."""
    app(prog_name="spokehub")


if __name__ == "__main__":  # pragma: no cover - ``python -m spokehub.cli`` is the tested path
    main()
