"""``spokehub tokens create|list|revoke``: API tokens for the HTTP server."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from spokehub.cli.render import when
from spokehub.cli.support import EXIT_NOT_FOUND, console, fail, print_json, run_with_client
from spokehub.ops import tokens
from spokehub.ops.tokens import Role
from spokehub.runtime.client import Client

tokens_app = typer.Typer(
    help="API tokens for `spokehub serve` (roles: viewer, operator, approver, admin).",
    no_args_is_help=True,
)


@tokens_app.command("create")
def create_command(
    ctx: typer.Context,
    role: Annotated[
        Role, typer.Option("--role", case_sensitive=False, help="What the token may do.")
    ],
    name: Annotated[str, typer.Option("--name", help="Who or what uses it, e.g. ci, alice.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Create a token and print it once: it is stored only as a hash."""
    created = run_with_client(ctx, lambda client: tokens.create_token(client, name=name, role=role))
    if as_json:
        print_json({**created.record.to_dict(), "token": created.secret})
        return
    typer.echo(created.secret)
    typer.echo(
        f"token {created.record.id} ({created.record.role.value}) for {created.record.name}; "
        "copy it now, it is not shown again",
        err=True,
    )


@tokens_app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Every token (never its secret), revoked ones too."""
    found = run_with_client(ctx, tokens.list_tokens)
    if as_json:
        print_json([t.to_dict() for t in found])
        return
    if not found:
        console().print("no tokens; create one with: spokehub tokens create --role admin --name me")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "name", "role", "created", "last used", "revoked"):
        table.add_column(column)
    for t in found:
        table.add_row(
            t.id,
            t.name,
            t.role.value,
            when(t.created_at),
            when(t.last_used_at),
            when(t.revoked_at) if t.revoked_at else "",
        )
    console().print(table)


@tokens_app.command("revoke")
def revoke_command(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token id (tokens list).")],
) -> None:
    """Revoke a token at once; dashboard sessions opened with it end too."""

    async def body(client: Client) -> tokens.TokenRecord:
        try:
            return await tokens.revoke_token(client, token_id)
        except tokens.TokenNotFound as exc:
            fail(str(exc), EXIT_NOT_FOUND)

    record = run_with_client(ctx, body)
    typer.echo(f"revoked token {record.id} ({record.name})")


def register(app: typer.Typer) -> None:
    app.add_typer(tokens_app, name="tokens")
