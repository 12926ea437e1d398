"""``spokehub patterns validate|build|diff|explain|release|releases|show``: the hub's patterns."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from spokehub.cli.support import (
    EXIT_CONFLICT,
    EXIT_USAGE,
    cli_errors,
    console,
    fail,
    print_json,
    run_with_client,
)
from spokehub.runtime.client import Client

patterns_app = typer.Typer(
    help="Design tokens (DTCG 2025.10) and OpenAPI patterns: validate, build for platforms, "
    "diff with a computed SemVer bump, record immutable releases.",
    no_args_is_help=True,
)

HubOpt = Annotated[
    Path, typer.Option("--hub", help="The hub folder (with patterns/*.yaml).", file_okay=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
PROGRESS_FROM = 4  # builds with at least this many (pattern, platform) pairs show a bar


def _print_diagnostics(diags: list[Any]) -> None:
    from rich.markup import escape

    err = console(stderr=True)
    for d in diags:
        style = "red" if d.severity == "error" else "yellow"
        err.print(f"[{style}]{escape(str(d))}[/{style}]")  # the text has [code] brackets


@patterns_app.command("validate")
def validate_command(hub: HubOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Check manifests and sources; report every problem with file:line:column."""
    from spokehub.patterns import load_hub
    from spokehub.patterns.errors import sort_diagnostics

    with cli_errors():
        loaded = load_hub(hub)
        diags = sort_diagnostics(loaded.validate())
    errors = [d for d in diags if d.severity == "error"]
    if as_json:
        print_json(
            {
                "ok": not errors,
                "patterns": sorted(loaded.patterns),
                "diagnostics": [d.to_dict() for d in diags],
            }
        )
    else:
        _print_diagnostics(diags)
        if not errors:
            typer.echo(
                f"ok: {len(loaded.patterns)} pattern(s) valid"
                + (f", {len(diags)} warning(s)" if diags else "")
            )
    if errors:
        if not as_json:
            typer.echo(f"error: {len(errors)} error(s); fix them and run validate again", err=True)
        raise typer.Exit(EXIT_USAGE)


@patterns_app.command("build")
def build_command(
    platform: Annotated[
        list[str],
        typer.Option(
            "--platform",
            "-p",
            help="css, scss, ts, swift, android, markdown, api-docs, or all (repeatable).",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output folder (one subfolder per pattern and platform).")
    ],
    hub: HubOpt = Path("."),
    pattern: Annotated[
        list[str] | None, typer.Option("--pattern", help="Only these pattern ids (repeatable).")
    ] = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Content-addressed result cache folder.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build patterns for platforms; outputs are byte-identical for identical sources."""
    from rich.progress import Progress

    from spokehub.patterns import BuildCache, build, load_hub, platforms_for

    with cli_errors():
        loaded = load_hub(hub)
        chosen = pattern or sorted(loaded.patterns)
        jobs = []
        for pid in chosen:
            p = loaded.get(pid)
            wanted = (
                platforms_for(p)
                if "all" in platform
                else [x for x in platform if x in platforms_for(p)]
            )
            jobs += [(p, plat) for plat in wanted]
        if not jobs:
            fail(f"no pattern can be built for {', '.join(platform)}", EXIT_USAGE)
        store = BuildCache(folder=cache)
        results = []
        with Progress(
            console=console(stderr=True),
            transient=True,
            disable=as_json or len(jobs) < PROGRESS_FROM,
        ) as bar:
            task = bar.add_task("building", total=len(jobs))
            for p, plat in jobs:
                bar.update(task, description=f"{p.id} → {plat}")
                result = build(p, plat, cache=store)
                result.write(out / p.id / plat)
                results.append(result)
                bar.advance(task)
    if as_json:
        print_json({"out": str(out), "builds": [r.to_dict() for r in results]})
        return
    for r in results:
        note = " (cached)" if r.cached else ""
        typer.echo(
            f"{r.pattern}@{r.version} {r.platform}: {len(r.files)} file(s) {r.digest[:19]}{note}"
        )


@patterns_app.command("diff")
def diff_command(
    hub: HubOpt = Path("."),
    base: Annotated[
        str,
        typer.Option(
            "--from", help="The earlier state: a git revision of the hub's repository or a folder."
        ),
    ] = "HEAD",
    as_json: JsonOpt = False,
) -> None:
    """Typed changes since ``--from`` and the SemVer bump they require."""
    from spokehub.patterns import load_hub
    from spokehub.patterns.compare import diff_hubs, load_hub_at

    with cli_errors():
        new = load_hub(hub)
        keep = None
        if Path(base).is_dir():
            old = load_hub(Path(base))
        else:
            old, keep = load_hub_at(hub, base)
        try:
            diffs = diff_hubs(old, new)
        finally:
            if keep is not None:
                keep.cleanup()
    if as_json:
        print_json({"from": base, "patterns": [d.to_dict() for d in diffs]})
    else:
        for d in diffs:
            verdict = "ok" if d.ok else "TOO LOW"
            typer.echo(
                f"{d.pattern}: {d.old_version or '(new)'} -> {d.new_version}; requires "
                f"{d.bump} ({d.required_version}) {verdict}"
            )
            for change in d.changes:
                typer.echo(f"  {change}")
    if any(not d.ok for d in diffs):
        raise typer.Exit(EXIT_CONFLICT)


@patterns_app.command("explain")
def explain_command(
    token: Annotated[str, typer.Argument(help="Token name, e.g. color.bg.")],
    pattern: Annotated[str, typer.Option("--pattern", help="Pattern id.")],
    hub: HubOpt = Path("."),
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="Resolver input modifier=context (repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Which set or context produced a token's value, and the alias chain it followed."""
    from spokehub.patterns import load_hub

    with cli_errors():
        p = load_hub(hub).get(pattern)
        resolver = p.resolver()
        if resolver is None:
            fail(f"pattern {pattern!r} has no resolver to explain", EXIT_USAGE)
        pairs = dict(i.split("=", 1) for i in inputs or [] if "=" in i)
        try:
            found = resolver.explain(token, pairs)
        except KeyError as exc:
            fail(str(exc.args[0]), EXIT_USAGE)
    if as_json:
        print_json(found.to_dict())
        return
    typer.echo(f"{found.name} with {found.inputs}: {found.value}")
    typer.echo(f"  alias chain: {' -> '.join(found.alias_chain)}")
    for index, c in enumerate(found.contributions):
        mark = "won" if index == len(found.contributions) - 1 else "overridden"
        typer.echo(f"  {c.origin} at {c.position} ({mark})")


@patterns_app.command("release")
def release_command(
    ctx: typer.Context,
    hub: HubOpt = Path("."),
    created_by: Annotated[
        str | None, typer.Option("--created-by", help="Who releases (default: $USER).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record an immutable release of every pattern (fails if a version is too low)."""
    from spokehub.patterns import load_hub
    from spokehub.patterns.release import get_release, plan_release, record_release

    with cli_errors():
        loaded = load_hub(hub)

    async def body(client: Client) -> Any:
        from spokehub.patterns.errors import PatternNotFound

        await client.ensure_schema()
        try:
            parent = await get_release(client.store, "latest")
        except PatternNotFound:
            parent = None
        release, diffs = plan_release(
            loaded, created_by=created_by or os.environ.get("USER", "unknown"), parent=parent
        )
        return await record_release(client.store, release, time.time()), diffs

    stored, diffs = run_with_client(ctx, body)
    if as_json:
        print_json({**stored.to_dict(), "diffs": [d.to_dict() for d in diffs]})
        return
    for pid, info in stored.document["patterns"].items():
        typer.echo(f"{pid} {info['version']} ({info['digest'][:19]})")
    typer.echo(f"release {stored.id} {stored.digest}")


@patterns_app.command("releases")
def releases_command(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List releases, newest first."""
    from spokehub.patterns.release import list_releases

    async def body(client: Client) -> Any:
        await client.ensure_schema()
        return await list_releases(client.store)

    found = run_with_client(ctx, body)
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    for r in found:
        names = ", ".join(f"{k}@{v['version']}" for k, v in r.document["patterns"].items())
        typer.echo(f"{r.id}  parent {r.parent or '-'}  {names}")


@patterns_app.command("show")
def show_command(
    ctx: typer.Context,
    release: Annotated[str, typer.Argument(help="Release id, digest, prefix or latest.")] = (
        "latest"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Show one release: its patterns, versions and digests."""
    from spokehub.patterns.release import get_release

    async def body(client: Client) -> Any:
        await client.ensure_schema()
        return await get_release(client.store, release)

    found = run_with_client(ctx, body)
    if as_json:
        print_json(found.to_dict())
        return
    doc = found.document
    typer.echo(
        f"release {found.id}\n  digest {found.digest}\n  parent {found.parent or '-'}"
        f"\n  source commit {doc.get('sourceCommit') or '-'}\n  created by "
        f"{doc.get('createdBy')}"
    )
    for pid, info in doc["patterns"].items():
        typer.echo(f"  {pid} {info['version']} {info['digest']}")


@patterns_app.command("guide")
def guide_command(
    pattern: Annotated[str, typer.Option("--pattern", help="An openapi pattern id.")],
    hub: HubOpt = Path("."),
    scripted: Annotated[
        Path | None,
        typer.Option(
            "--scripted", help="JSON file of answers by section id (the scripted generator)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Generate changed sections with this model (SPOKEHUB_LLM_* settings).",
        ),
    ] = None,
    approve: Annotated[
        list[str] | None, typer.Option("--approve", help="Approve a pending section (repeatable).")
    ] = None,
    approved_by: Annotated[str | None, typer.Option("--approved-by")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Refresh the LLM-drafted guide's changed sections, or approve pending ones.

    Without --scripted or --model nothing is generated: the command shows what is accepted and
    pending.
    Approved sections are pinned in llm.lock.json, which `build -p guide` renders offline.
    """
    import json

    from spokehub.patterns import load_hub
    from spokehub.patterns.guide import (
        LOCK_NAME,
        GuideLock,
        LLMGenerator,
        ScriptedGenerator,
        refresh_guide,
    )

    with cli_errors():
        loaded = load_hub(hub)
        p = loaded.get(pattern)
        lock_path = loaded.root / LOCK_NAME
        lock = GuideLock.load(lock_path)
        report = None
        if scripted is not None:
            answers = json.loads(scripted.read_text(encoding="utf-8"))
            report = refresh_guide(p.id, p.document().value, lock, ScriptedGenerator(answers))
        elif model is not None:
            report = refresh_guide(p.id, p.document().value, lock, LLMGenerator(model))
        for section in approve or []:
            lock.approve(p.id, section, approved_by or os.environ.get("USER", "unknown"))
        lock.save(lock_path)
    accepted = sorted(lock.accepted.get(p.id, {}))
    pending = {k: list(v.problems) for k, v in sorted(lock.pending.get(p.id, {}).items())}
    if as_json:
        refresh = report.to_dict() if report else None
        print_json({"accepted": accepted, "pending": pending, "refresh": refresh})
        return
    typer.echo(f"accepted: {', '.join(accepted) or '-'}")
    for sid, problems in pending.items():
        typer.echo(
            f"pending: {sid}"
            + (f" (rejected: {'; '.join(problems)})" if problems else " (awaiting approval)")
        )


def register(app: typer.Typer) -> None:
    app.add_typer(patterns_app, name="patterns")
