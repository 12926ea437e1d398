"""``spokehub approvals list|link``: what waits, and signed single-use links to decide."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from spokehub.cli.support import EXIT_USAGE, fail, print_json, run_with_client
from spokehub.ops.approval_links import create_link
from spokehub.ops.durations import parse_duration
from spokehub.ops.inbox import pending_approvals

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


@approvals_app.command("list")
def list_command(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option("--for", help="Only those this user may decide.")
    ] = None,
    role: Annotated[str | None, typer.Option("--role", help="That user's role.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Approvals waiting for a decision, oldest first (all, or those USER may decide)."""
    items = run_with_client(ctx, lambda client: pending_approvals(client, assignee=user, role=role))
    if as_json:
        print_json([item.to_dict() for item in items])
        return
    if not items:
        typer.echo("nothing waits for a decision")
    for item in items:
        who = ", ".join(item.assignees) or "anyone"
        typer.echo(f"{item.run_id}  {item.workflow}  {item.name!r}  quorum {item.quorum}  {who}")


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
