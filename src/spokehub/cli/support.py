"""What every command shares: the global options, exit codes, error lines, JSON in and out."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from spokehub.config import Settings
from spokehub.errors import SpokehubError
from spokehub.governance.secrets import resolve_reference
from spokehub.governance.wiring import govern
from spokehub.runtime.client import Client

T = TypeVar("T")

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_STORE = 5
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 the run failed or was cancelled; 2 bad usage or input (bad JSON, "
    "unknown module or workflow, invalid arguments); 3 not found (unknown run id); "
    "4 conflict or invalid state (run id taken, nothing to approve, not yours to approve); "
    "5 database error (also a missing or wrong encryption key)."
)

# SpokehubError.code -> exit code; codes not listed here exit 1.
_EXIT_BY_CODE = {
    "configuration": EXIT_USAGE,
    "registration": EXIT_USAGE,
    "serialization": EXIT_USAGE,
    "invalid_input": EXIT_USAGE,
    "too_large": EXIT_USAGE,
    "workflow_not_found": EXIT_USAGE,
    "policy_invalid": EXIT_USAGE,
    "secret_not_found": EXIT_USAGE,
    "run_not_found": EXIT_NOT_FOUND,
    "run_id_conflict": EXIT_CONFLICT,
    "invalid_state": EXIT_CONFLICT,
    "approval_closed": EXIT_CONFLICT,
    "duplicate_vote": EXIT_CONFLICT,
    "approval_forbidden": EXIT_CONFLICT,
    "encryption_key": EXIT_STORE,
    "store": EXIT_STORE,
    "schema": EXIT_STORE,
    "lease_lost": EXIT_STORE,
    "run_failed": EXIT_RUN_FAILED,
    "run_cancelled": EXIT_RUN_FAILED,
    "schedule": EXIT_USAGE,
    "contract": EXIT_USAGE,
    "schedule_not_found": EXIT_NOT_FOUND,
    "throttled": EXIT_CONFLICT,
    "pattern": EXIT_USAGE,
    "pattern_invalid": EXIT_USAGE,
    "pattern_not_found": EXIT_NOT_FOUND,
    "version_too_low": EXIT_CONFLICT,
    # distribution (spokehub dist ...)
    "manifest_invalid": EXIT_USAGE,
    "cel": EXIT_USAGE,
    "release_not_found": EXIT_NOT_FOUND,
    "plan_stale": EXIT_CONFLICT,
}


def exit_code_for(exc: SpokehubError) -> int:
    return _EXIT_BY_CODE.get(exc.code, EXIT_RUN_FAILED)


@dataclass(frozen=True, slots=True)
class CliState:
    """Global options, kept on the click context as ``ctx.obj``."""

    db: str | None = None
    unsafe_durability: bool = False

    def settings(self) -> Settings:
        settings = Settings.from_env(
            database_url=self.db, unsafe_durability=True if self.unsafe_durability else None
        )
        # ``secret://NAME`` (e.g. a PostgreSQL URL with its password) resolves here, masked.
        url = resolve_reference(settings.database_url)
        return settings if url == settings.database_url else settings.with_(database_url=url)

    def db_flag(self) -> str:
        """``--db URL `` to repeat in a hint, when the user gave one."""
        return f"--db {_quote(self.db)} " if self.db else ""


def _quote(text: str) -> str:
    return text if text and all(c.isalnum() or c in "/._-:" for c in text) else json.dumps(text)


def state(ctx: typer.Context) -> CliState:
    found = ctx.find_object(CliState)
    return found if found is not None else CliState()


def one_line(message: str) -> str:
    return " ".join(message.split())


def fail(message: str, code: int) -> NoReturn:
    """Print ``error: ...`` on stderr and exit with ``code``."""
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn spokehub errors and bad arguments into one stderr line and an exit code."""
    try:
        yield
    except typer.Exit:
        raise
    except SpokehubError as exc:
        fail(str(exc), exit_code_for(exc))
    except ValueError as exc:  # an argument that makes no sense (empty name, bad duration)
        fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), EXIT_STORE)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)


def run_with_client(ctx: typer.Context, body: Callable[[Client], Awaitable[T]]) -> T:
    """Open a client on the database the options name, run ``body`` with it, close it."""

    async def main() -> T:
        client = Client(settings=state(ctx).settings())
        govern(client)  # policies of SPOKEHUB_POLICY_DIR, when set
        try:
            return await body(client)
        finally:
            await client.close_async()

    with cli_errors():
        return asyncio.run(main())
    raise AssertionError("unreachable")  # pragma: no cover - cli_errors re-raises or exits


def parse_json(text: str, option: str) -> Any:
    """A JSON value from the command line, or exit 2 saying where it is wrong."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(
            f"{option} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            f"""quote it for the shell, e.g. {option} '{{"name": "value"}}'""",
            EXIT_USAGE,
        )


def parse_json_object(text: str, option: str) -> dict[str, Any]:
    value = parse_json(text, option)
    if not isinstance(value, dict):
        fail(
            f"{option} must be a JSON object of keyword arguments, like "
            f"""'{{"order_id": "o-1"}}', not a {type(value).__name__}""",
            EXIT_USAGE,
        )
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout/stderr (tests swap them per invocation)."""
    return Console(file=sys.stderr if stderr else sys.stdout, highlight=False, soft_wrap=True)
