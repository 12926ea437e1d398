"""Releases in the store (SQLite and PostgreSQL), and the CLI end to end on a real git repo."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spokehub.cli.app import app
from spokehub.patterns import PatternNotFound, VersionTooLow, load_hub
from spokehub.patterns.release import (
    get_release,
    list_releases,
    plan_release,
    record_release,
)
from spokehub.runtime.client import Client
from tests.patterns.support import copy_hub, edit_json

runner = CliRunner()


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
    )


def _repo(tmp: Path) -> Path:
    hub = copy_hub(tmp)
    _git(hub, "init", "-q")
    _git(hub, "add", "-A")
    _git(hub, "commit", "-qm", "init")
    return hub


def test_releases_are_immutable_and_reproducible(client: Client, tmp_path: Path) -> None:
    hub = _repo(tmp_path)

    async def body() -> None:
        await client.ensure_schema()
        first, diffs = plan_release(load_hub(hub), created_by="ana", parent=None)
        assert [d.bump for d in diffs] == ["major", "major"]  # new patterns
        again, _ = plan_release(load_hub(hub), created_by="ana", parent=None)
        assert again.digest == first.digest  # same sources, same digest
        stored = await record_release(client.store, first, 10.0)
        twice = await record_release(client.store, again, 20.0)
        assert twice.created_at == 10.0
        same, _ = plan_release(load_hub(hub), created_by="bob", parent=stored)
        assert same is stored  # unchanged sources: no new release
        assert twice.id == stored.id
        edit_json(hub / "tokens" / "primitives.tokens.json", lambda d: d["opacity"].pop("muted"))
        _git(hub, "commit", "-qam", "remove a token")
        with pytest.raises(VersionTooLow) as caught:
            plan_release(load_hub(hub), created_by="ana", parent=stored)
        assert any("removed opacity.muted" in r for r in caught.value.reasons)
        text = (hub / "patterns" / "patterns.yaml").read_text()
        (hub / "patterns" / "patterns.yaml").write_text(text.replace("1.0.0", "2.0.0", 1))
        _git(hub, "commit", "-qam", "2.0.0")
        second, _ = plan_release(load_hub(hub), created_by="ana", parent=stored)
        await record_release(client.store, second, 30.0)
        listed = await list_releases(client.store)
        assert [r.id for r in listed] == [second.id, stored.id]
        latest = await get_release(client.store, "latest")
        assert latest.parent == stored.id
        assert latest.document["patterns"]["ds.tokens.core"]["version"] == "2.0.0"
        assert (await get_release(client.store, stored.id[:10])).id == stored.id
        with pytest.raises(PatternNotFound):
            await get_release(client.store, "rel-nothing")

    asyncio.run(body())


def test_cli(tmp_path: Path) -> None:
    hub = _repo(tmp_path)
    db = str(tmp_path / "db.sqlite")
    ok = runner.invoke(app, ["patterns", "validate", "--hub", str(hub)])
    assert ok.exit_code == 0
    assert "2 pattern(s) valid" in ok.output
    out = tmp_path / "out"
    built = runner.invoke(
        app, ["patterns", "build", "--hub", str(hub), "-p", "all", "--out", str(out), "--json"]
    )
    assert built.exit_code == 0, built.output
    assert len(json.loads(built.output)["builds"]) == 9
    assert (out / "ds.tokens.core" / "css" / "tokens.css").is_file()
    rel = runner.invoke(
        app, ["--db", db, "patterns", "release", "--hub", str(hub), "--created-by", "ana", "--json"]
    )
    assert rel.exit_code == 0, rel.output
    release_id = json.loads(rel.output)["id"]
    shown = runner.invoke(app, ["--db", db, "patterns", "show", release_id])
    assert shown.exit_code == 0
    assert "created by ana" in shown.output
    listed = runner.invoke(app, ["--db", db, "patterns", "releases", "--json"])
    assert [r["id"] for r in json.loads(listed.output)] == [release_id]
    explain = runner.invoke(
        app,
        [
            "patterns",
            "explain",
            "color.bg",
            "--hub",
            str(hub),
            "--pattern",
            "ds.tokens.core",
            "-i",
            "theme=dark",
        ],
    )
    assert "modifier:theme=dark at tokens/themes/dark.tokens.json:1" in explain.output
    edit_json(
        hub / "tokens" / "semantic.tokens.json",
        lambda d: d["color"]["text"].update({"quiet": d["color"]["text"].pop("subtle")}),
    )
    diff = runner.invoke(app, ["patterns", "diff", "--hub", str(hub), "--json"])
    assert diff.exit_code == 4
    tokens = next(
        p for p in json.loads(diff.output)["patterns"] if p["pattern"] == "ds.tokens.core"
    )
    assert tokens["bump"] == "major"
    assert tokens["required_version"] == "2.0.0"
    refused = runner.invoke(app, ["--db", db, "patterns", "release", "--hub", str(hub)])
    assert refused.exit_code == 4
    assert "requires 2.0.0" in refused.output
    edit_json(
        hub / "tokens" / "semantic.tokens.json",
        lambda d: d["color"].update({"bad": {"$value": "{nope}"}}),
    )
    text = runner.invoke(app, ["patterns", "validate", "--hub", str(hub)])
    assert text.exit_code == 2
    assert "does not name a token [missing_reference] (#/color/bad/$value)" in text.output
    bad = runner.invoke(app, ["patterns", "validate", "--hub", str(hub), "--json"])
    assert bad.exit_code == 2
    assert json.loads(bad.output)["diagnostics"][0]["file"] == "tokens/semantic.tokens.json"
    missing = runner.invoke(app, ["patterns", "validate", "--hub", str(tmp_path / "none")])
    assert missing.exit_code == 3
