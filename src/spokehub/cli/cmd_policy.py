"""``spokehub policy check|test|eval``: compile, test and try policies, offline.

Exit codes: 0 ok (``eval``: allowed or warned); 1 a test case got another decision than
expected, or ``eval`` was denied; 2 the policy files, the cases or the input are invalid.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from spokehub.cli.support import (
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    cli_errors,
    console,
    fail,
    parse_json,
    print_json,
)
from spokehub.governance import PolicyLoadError, PolicySet, Subject, evaluate, load_policy_dir
from spokehub.governance.cases import load_cases, run_cases
from spokehub.governance.sarif import sarif_log

policy_app = typer.Typer(
    help="Policies as code (CEL): check, test and evaluate a policy directory.",
    no_args_is_help=True,
)


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"


DirArg = Annotated[
    Path, typer.Argument(help="Policy directory (*.yaml, *.yml, searched recursively).")
]
EngineOpt = Annotated[
    str | None,
    typer.Option("--engine", help="cel-expr-python (default) or common-expression-language."),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="text, json or sarif.")]


def _load_or_report(directory: Path, engine: str | None, fmt: Format) -> PolicySet:
    try:
        return load_policy_dir(directory, engine=engine)
    except PolicyLoadError as exc:
        if fmt is Format.SARIF:
            print_json(sarif_log(problems=exc.problems))
        elif fmt is Format.JSON:
            print_json(
                {
                    "ok": False,
                    "problems": [
                        {"file": p.file, "line": p.line, "message": p.message} for p in exc.problems
                    ],
                }
            )
        for p in exc.problems:
            typer.echo(f"error: {p}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except Exception as exc:  # a missing extra or an unknown engine name
        with cli_errors():
            raise exc
        raise AssertionError("unreachable") from None  # pragma: no cover


@policy_app.command("check")
def check_command(
    directory: DirArg, engine: EngineOpt = None, fmt: FormatOpt = Format.TEXT
) -> None:
    """Compile and type-check every policy; list problems with file and line (exit 2)."""
    policies = _load_or_report(directory, engine, fmt)
    if fmt is Format.SARIF:
        print_json(sarif_log())
    elif fmt is Format.JSON:
        print_json({"ok": True, **policies.summary()})
    else:
        console().print(
            f"ok: {len(policies.policies)} policies, {len(policies.bindings)} bindings, "
            f"{len(policies.exceptions)} exceptions ({policies.engine}); set {policies.digest}"
        )


@policy_app.command("test")
def cases_command(
    directory: DirArg,
    cases: Annotated[Path, typer.Option("--cases", help="YAML list of cases with `expect`.")],
    engine: EngineOpt = None,
    fmt: FormatOpt = Format.TEXT,
) -> None:
    """Evaluate sample inputs and compare with the expected decisions (exit 1 on a mismatch)."""
    policies = _load_or_report(directory, engine, fmt)
    with cli_errors():
        loaded = load_cases(cases)
    results = run_cases(policies, loaded, now=time.time())
    failed = [r for r in results if not r.ok]
    if fmt is Format.SARIF:
        print_json(sarif_log([(r.case.name, r.decision) for r in results]))
    elif fmt is Format.JSON:
        print_json(
            [
                {"case": r.case.name, "ok": r.ok, "expect": r.case.expect, **r.decision.to_dict()}
                for r in results
            ]
        )
    else:
        out = console()
        for r in results:
            mark = "[green]pass[/]" if r.ok else "[red]FAIL[/]"
            out.print(f"{mark} {r.case.name}: expected {r.case.expect}, got {r.decision.decision}")
            if not r.ok:
                for message in r.decision.messages():
                    out.print(f"     {message}")
        out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(EXIT_RUN_FAILED)


@policy_app.command("eval")
def eval_command(
    directory: DirArg,
    input_json: Annotated[
        str, typer.Option("--input", help="The document as JSON, or @FILE to read it.")
    ],
    hook: Annotated[
        str, typer.Option("--hook", help="Hook point: run.start, step, gate, ...")
    ] = "gate",
    workflow: Annotated[str | None, typer.Option("--workflow", help="Workflow name.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Step, gate or approval name.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Who acts.")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="A label of the step or workflow.")
    ] = None,
    engine: EngineOpt = None,
    fmt: FormatOpt = Format.TEXT,
) -> None:
    """Decide one document and print the decision (exit 1 when denied)."""
    policies = _load_or_report(directory, engine, fmt)
    text = input_json
    if input_json.startswith("@"):
        try:
            text = Path(input_json[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read {input_json[1:]}: {exc.strerror}", EXIT_USAGE)
    document = parse_json(text, "--input")
    subject = Subject(
        hook=hook, workflow=workflow, name=name, actor=actor, labels=tuple(label or ())
    )
    decision = evaluate(policies, subject, document, now=time.time())
    if fmt is Format.SARIF:
        print_json(sarif_log([("input", decision)]))
    elif fmt is Format.JSON:
        typer.echo(json.dumps(decision.to_dict(), indent=2))
    else:
        out = console()
        out.print(f"decision: {decision.decision} ({len(decision.results)} binding(s) applied)")
        for r in decision.results:
            out.print(f"  {r.binding} -> {r.policy}: {r.outcome} [{', '.join(r.actions)}]")
            for v in r.violations:
                out.print(f"     {v.reason}: {v.message} ({v.expression})")
    if decision.denied:
        raise typer.Exit(EXIT_RUN_FAILED)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
