"""``spokehub contracts diff OLD NEW``: guard a contract change in CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from spokehub.cli.support import EXIT_RUN_FAILED, EXIT_USAGE, console, fail, print_json

contracts_app = typer.Typer(
    help="Contracts: named, versioned request/response shapes (JSON files).",
    no_args_is_help=True,
)


@contracts_app.command("diff")
def diff_command(
    old: Annotated[Path, typer.Argument(help="The released contract (JSON file).")],
    new: Annotated[Path, typer.Argument(help="The proposed contract (JSON file).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Classify each change as compatible or breaking; exit 1 if any is breaking.

    A contract file is ``{"name", "version", "request": SCHEMA, "response": SCHEMA}`` or a
    bare JSON Schema. Exit codes: 0 compatible, 1 breaking, 2 a file does not load.
    """
    try:
        from spokehub.integrations import ContractError, load_contract_file
        from spokehub.integrations.compat import diff_contracts, is_breaking
    except ImportError as exc:  # pragma: no cover - the extra is part of dev installs
        fail(f"{exc}; install the extra: pip install 'spokehub[integrations]'", EXIT_USAGE)
    try:
        changes = diff_contracts(load_contract_file(old), load_contract_file(new))
    except ContractError as exc:
        fail(str(exc), EXIT_USAGE)
    breaking = is_breaking(changes)
    if as_json:
        print_json({"breaking": breaking, "changes": [c.to_dict() for c in changes]})
    elif not changes:
        console().print("no changes")
    else:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("", "path", "change", "detail"):
            table.add_column(column)
        for c in changes:
            mark = "[red]breaking[/]" if c.breaking else "[green]ok[/]"
            table.add_row(mark, c.path, c.kind, c.detail)
        console().print(table)
        verdict = "BREAKING" if breaking else "compatible"
        console().print(f"{len(changes)} change(s): {verdict}")
    if breaking:
        raise typer.Exit(EXIT_RUN_FAILED)


def register(app: typer.Typer) -> None:
    app.add_typer(contracts_app, name="contracts")
