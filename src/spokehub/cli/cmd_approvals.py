"""``spokehub approvals link``: a signed, single-use link for one person to decide."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from spokehub.cli.support import EXIT_USAGE, fail, print_json, run_with_client
from spokehub.ops.approval_links import create_link
from spokehub.ops.durations import parse_duration

approvals_app = typer.Typer(
    help="Approvals: signed links for people to decide.", no_args_is_help=True
)


@approvals_app.command("link")
def link_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run that waits for the approval.")],
    by: Annotated[str, typer.Option("--for", help="The person the link is for (user name).")],
    name: Annotated[
        str | None, typer.Option("--name", help="Which approval, when the run waits for several.")
    ] = None,
    role: Annotated[
        str | None, typer.Option("--role", help="Their role, for role:NAME assignees.")
    ] = None,
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime, e.g. 24h or 30m.")] = "24h",
    base_url: Annotated[
        str, typer.Option("--url", help="The server's public URL, to print a full link.")
    ] = "",
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file",
            help="The server's secret file (default: $SPOKEHUB_SERVER_SECRET).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Print a link that lets one assignee approve or reject, once (default: for 24 h).

    It is signed with the server's secret (``SPOKEHUB_SERVER_SECRET``, or the file the server
    keeps it in: ``server-secret`` beside the SQLite file, else ``.spokehub/server-secret``).
    """
    try:
        seconds = parse_duration(ttl)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    secret = _secret(secret_file)
    issued = run_with_client(
        ctx,
        lambda client: create_link(
            client, secret, run_id, by=by, name=name, role=role, ttl=seconds
        ),
    )
    if as_json:
        print_json(issued.to_dict())
        return
    typer.echo(base_url.rstrip("/") + issued.path)


def _secret(path: Path | None) -> bytes:
    if path is not None:
        try:
            return path.read_bytes().strip()
        except OSError as exc:
            fail(f"cannot read the server secret from {path}: {exc.strerror}", EXIT_USAGE)
    given = os.environ.get("SPOKEHUB_SERVER_SECRET", "")
    if not given:
        fail(
            "links are signed with the server's secret: set SPOKEHUB_SERVER_SECRET or pass "
            "--secret-file (the server keeps it in server-secret beside the SQLite file, else "
            ".spokehub/server-secret)",
            EXIT_USAGE,
        )
    return given.encode("utf-8")


def register(app: typer.Typer) -> None:
    app.add_typer(approvals_app, name="approvals")
