"""``spokehub run`` (start a run and watch it to its end) and ``spokehub worker``."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console

from spokehub import ops
from spokehub.cli.progress import ProgressPrinter
from spokehub.cli.render import run_detail
from spokehub.cli.scheduling import scheduling
from spokehub.cli.support import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    CliState,
    cli_errors,
    console,
    fail,
    one_line,
    parse_json_object,
    print_json,
    run_with_client,
    state,
)
from spokehub.runtime.client import Client, os_user
from spokehub.runtime.definitions import REGISTRY, Workflow
from spokehub.runtime.loader import import_app, load_target
from spokehub.runtime.worker import Worker
from spokehub.types import RunStatus

TARGET_HELP = "The workflow: MODULE:WORKFLOW or path/to/file.py:WORKFLOW."


def run_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="MODULE_OR_FILE:WORKFLOW", help=TARGET_HELP)],
    input_json: Annotated[
        str, typer.Option("--input", "-i", help="JSON object of keyword arguments.")
    ] = "{}",
    run_id: Annotated[
        str | None, typer.Option("--id", help="Run id (idempotency key); random when omitted.")
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Only enqueue the run and print its id.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Start a run and execute it here to its end, showing its steps as they complete.

    With --no-wait the run is only enqueued, for a `spokehub worker` to execute.
    """
    with cli_errors():
        wf = load_target(target)
    data = parse_json_object(input_json, "--input")
    cli = state(ctx)
    out = console(stderr=as_json)  # with --json, stdout carries the JSON only
    if no_wait:
        run = run_with_client(
            ctx, lambda client: ops.start(client, wf, data, run_id=run_id, started_by=_me())
        )
        if as_json:
            print_json({"id": run.id, "workflow": run.workflow, "status": run.status.value})
        else:
            typer.echo(run.id)
            typer.echo(
                f"enqueued; execute it with: spokehub {cli.db_flag()}worker --app "
                f"{target.rpartition(':')[0]} --until-idle",
                err=True,
            )
        return
    resume = f"spokehub {cli.db_flag()}worker --app {target.rpartition(':')[0]}"
    try:
        view = run_with_client(
            ctx, lambda client: _start_and_watch(client, wf, data, run_id, cli, out)
        )
    except typer.Exit as stop:
        if stop.exit_code == EXIT_INTERRUPTED:
            typer.echo(f"the run is saved; resume it with: {resume}", err=True)
        raise
    if view is None:
        fail(f"terminated; the run is saved, resume it with: {resume}", EXIT_INTERRUPTED)
    _report(view, as_json, cli, out)


async def _start_and_watch(
    client: Client,
    wf: Workflow[..., Any],
    data: dict[str, Any],
    run_id: str | None,
    cli: CliState,
    out: Console,
) -> ops.RunView | None:
    """Start the run and execute it here; None when SIGTERM stopped it first."""
    run = await ops.start(client, wf, data, run_id=run_id, started_by=_me())
    out.print(f"run {run.id} of {run.workflow}", style="bold")
    printer = ProgressPrinter(out, run.id, cli.db_flag())

    async def watch() -> None:
        async for progress in ops.follow(client, run.id):
            printer.show(progress)
            status.update(printer.status_text)

    loop = asyncio.get_running_loop()
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        executing.cancel()

    with out.status(f"{run.workflow} {run.id}: {run.status.value}") as status:
        executing = asyncio.create_task(ops.execute(client, run.id))
        watcher = asyncio.create_task(watch())
        sigterm = _add_signal_handler(loop, signal.SIGTERM, on_sigterm)
        try:
            record = await executing
            if record.status.finished:
                await watcher  # ends as soon as it reads the finished run
        except asyncio.CancelledError:
            if not terminated:
                raise
            return None  # like Ctrl-C: the run is saved, a worker resumes it
        finally:
            if sigterm:
                loop.remove_signal_handler(signal.SIGTERM)
            for task in (watcher, executing):
                task.cancel()
            # a watcher that failed while the run went on must not be reported at exit
            await asyncio.gather(watcher, executing, return_exceptions=True)
    return await ops.show_run(client, run.id)


def _add_signal_handler(
    loop: asyncio.AbstractEventLoop, sig: signal.Signals, handler: Callable[[], None]
) -> bool:
    try:
        loop.add_signal_handler(sig, handler)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
        return False
    return True


def _report(view: ops.RunView, as_json: bool, cli: CliState, out: Console) -> None:
    run = view.run
    if as_json:
        print_json(view.to_dict())
    else:
        out.print(run_detail(view, db_flag=cli.db_flag()))
    if run.status is RunStatus.COMPLETED:
        raise typer.Exit(EXIT_OK)
    error = run.error or {}
    detail = f": {error.get('type', 'Error')}: {error.get('message', '')}" if error else ""
    typer.echo(f"error: run {run.id} {run.status.value}{one_line(detail)}", err=True)
    raise typer.Exit(EXIT_RUN_FAILED)


def worker_command(
    ctx: typer.Context,
    apps: Annotated[
        list[str] | None,
        typer.Option("--app", help="Module or .py file with workflows to import (repeatable)."),
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option("--queues", help="Comma-separated queues (default: those of the workflows)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Runs executed at the same time.")
    ] = 64,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Execute what is due, then exit (burst mode).")
    ] = False,
    drain_timeout: Annotated[
        float | None,
        typer.Option(
            "--drain-timeout",
            min=0,
            help="On SIGTERM/Ctrl-C, seconds to let steps in flight finish (default 30).",
        ),
    ] = None,
) -> None:
    """Execute runs from the queues until SIGTERM / Ctrl-C (or until idle).

    The first SIGTERM or Ctrl-C drains: no new runs are taken, steps in flight finish (the
    worker keeps heartbeating) and their runs are handed back for other workers; a second
    one stops at once (in-flight steps then run again elsewhere).
    """
    with cli_errors():
        for ref in apps or ():
            import_app(ref)
    if not REGISTRY.workflows:
        fail(
            "no workflows are registered, so there is nothing to execute; import them with "
            "--app MODULE_OR_FILE",
            EXIT_USAGE,
        )
    names = _queues(queues)
    out = console(stderr=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    activations = run_with_client(
        ctx, lambda client: _work(client, names, concurrency, until_idle, out, drain_timeout)
    )
    out.print(f"worker stopped after {activations} activation(s)")


def _queues(option: str | None) -> list[str]:
    if option is None:
        return sorted({wf.queue for wf in REGISTRY.workflows.values()})
    names = [q.strip() for q in option.split(",") if q.strip()]
    if not names:
        fail("--queues names no queue; write e.g. --queues default,emails", EXIT_USAGE)
    return names


async def _work(
    client: Client,
    queues: list[str],
    concurrency: int,
    until_idle: bool,
    out: Console,
    drain_timeout: float | None = None,
) -> int:
    worker = Worker(client, queues=queues, concurrency=concurrency)
    if drain_timeout is not None:
        worker.drain_timeout = drain_timeout
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:  # the first asks nicely; a second one stops at once
            out.print(
                f"draining: steps in flight finish (up to {worker.drain_timeout:.0f}s), then "
                "their runs go back to the queue (press Ctrl-C again to stop at once)"
            )
            worker.stop(drain=True)
        elif main is not None:
            main.cancel()

    installed = [
        sig for sig in (signal.SIGINT, signal.SIGTERM) if _add_signal_handler(loop, sig, on_signal)
    ]
    mode = "until idle" if until_idle else "until stopped"
    out.print(
        f"worker {worker.owner}: queues {', '.join(queues)}; {len(REGISTRY.workflows)} "
        f"workflow(s); concurrency {concurrency}; {mode}"
    )
    try:
        async with scheduling(client, until_idle=until_idle):
            await worker.run(until_idle=until_idle)
    except asyncio.CancelledError:
        if signals < 2 or main is None:
            raise
        main.uncancel()
        out.print("stopped at once; runs in flight resume from their ledger on the next worker")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    return worker.completed_activations


def _me() -> str:
    """Who starts a run from the CLI: the OS user (approvals' self-approval rule)."""
    return os_user()
