"""``spokehub serve``: the HTTP API, webhooks and dashboard, optionally with a worker."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from spokehub.cli.support import EXIT_USAGE, cli_errors, console, fail, state
from spokehub.ops.hooks import load_hooks
from spokehub.ops.slo import load_targets
from spokehub.runtime.definitions import REGISTRY
from spokehub.runtime.loader import import_app

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
FACTORY = "spokehub.server.app:create_app_from_env"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def serve_command(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless you say so).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8321,
    apps: Annotated[
        list[str] | None,
        typer.Option("--app", help="Module or .py file with workflows to import (repeatable)."),
    ] = None,
    hooks_file: Annotated[
        Path | None, typer.Option("--hooks", help="TOML file of webhook triggers.")
    ] = None,
    slo_file: Annotated[
        Path | None,
        typer.Option("--slo", help="TOML file of SLO targets per workflow (the SLO page)."),
    ] = None,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker", help="Also execute runs here (one process for everything)."
        ),
    ] = False,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log lines as text or JSON.")
    ] = LogFormat.TEXT,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING...")] = "INFO",
    allowed_hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Another name clients use in the Host header, e.g. behind a proxy (repeatable).",
        ),
    ] = None,
) -> None:
    """Serve the REST API (/api/v1), webhooks (/hooks) and the dashboard (/ui).

    Every API call needs a token: create one with `spokehub tokens create --role admin`.
    """
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - the dev environment has the extra
        fail("the server needs its extra: pip install 'spokehub[server]'", EXIT_USAGE)
    with cli_errors():  # check everything here, so that mistakes are one line, not a traceback
        for ref in apps or ():
            import_app(ref)
        if hooks_file is not None:
            load_hooks(hooks_file)
        if slo_file is not None:
            load_targets(slo_file)
        settings = state(ctx).settings()
    if worker and not REGISTRY.workflows:
        fail("--worker needs workflows to execute; import them with --app MODULE_OR_FILE", 2)
    out = console(stderr=True)
    if host not in _LOOPBACK:
        out.print(
            f"warning: listening on {host}: tokens travel in clear text unless a TLS proxy is "
            "in front; pass --allowed-host with the name clients use",
            style="yellow",
        )
    # The CLI and the server are sibling layers: the CLI hands its options to the app factory
    # through the environment, the same way `uvicorn --factory` deployments configure it.
    os.environ.update(
        {
            "SPOKEHUB_DATABASE_URL": settings.database_url,
            "SPOKEHUB_SERVER_HOST": host,
            "SPOKEHUB_SERVER_PORT": str(port),
            "SPOKEHUB_SERVER_APPS": ",".join(apps or ()),
            "SPOKEHUB_SERVER_HOOKS": str(hooks_file or ""),
            "SPOKEHUB_SERVER_WORKER": "1" if worker else "0",
            "SPOKEHUB_SERVER_ALLOWED_HOSTS": ",".join(allowed_hosts or ()),
            "SPOKEHUB_SERVER_LOG_FORMAT": log_format.value,
            "SPOKEHUB_SERVER_LOG_LEVEL": log_level,
        }
    )
    if slo_file is not None:
        os.environ["SPOKEHUB_SLO_FILE"] = str(slo_file)
    if settings.unsafe_durability:
        os.environ["SPOKEHUB_UNSAFE_DURABILITY"] = "1"
    out.print(
        f"spokehub serving http://{host}:{port}/api/v1 ({len(REGISTRY.workflows)} workflow(s); "
        f"worker {'on' if worker else 'off'}); Ctrl-C stops it"
    )
    with cli_errors():
        uvicorn.run(
            FACTORY,
            factory=True,
            host=host,
            port=port,
            log_level=log_level.lower(),
            log_config=None,
        )
