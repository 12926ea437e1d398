"""Recorded pattern releases, frozen from their commit into a hub, then rolled out."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from spokehub.cli.app import app
from spokehub.distribution.demo.hubfiles import write_release
from spokehub.distribution.demo.scenario import DIST
from tests.dist_support import AUTO_GATE, demo_hub

runner = CliRunner()


def cli(db: str, *args: str, code: int = 0) -> Result:
    result = runner.invoke(app, ["--db", db, *args], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def patterns_repo(tmp: Path) -> Path:
    """A patterns hub under git (the demo's tokens and API spec), version 2.0.0 committed."""
    write_release(tmp / "work", "x", "2.0.0", accent=[0.1, 0.2, 0.3])
    repo = tmp / "patterns"
    shutil.move(tmp / "work" / "releases" / "x", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "tokens 2.0.0")
    return repo


def test_a_recorded_release_is_frozen_from_its_commit_and_rolled_out(
    db_url: str, tmp_path: Path
) -> None:
    repo = patterns_repo(tmp_path)
    recorded = json.loads(cli(db_url, "patterns", "release", "--hub", str(repo), "--json").output)
    rid = recorded["id"]
    # The working tree moves on after the release: the frozen release must not see it.
    tokens = repo / "tokens" / "semantic.tokens.json"
    tokens.write_text(
        tokens.read_text().replace('"$type"', '"$description": "edited",\n"$type"', 1)
    )
    assert "edited" in tokens.read_text()
    with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _):
        h = ["--hub", str(hub)]
        out = cli(db_url, "dist", "release", rid, "--patterns", str(repo), *h).output
        assert f"release {rid} frozen" in out
        assert "from commit" in out
        frozen = hub / "releases" / rid
        assert json.loads((frozen / "release.json").read_text())["digest"] == recorded["digest"]
        assert "edited" not in (frozen / "tokens" / "semantic.tokens.json").read_text()
        again = cli(db_url, "dist", "release", rid, "--patterns", str(repo), *h).output
        assert "already frozen, unchanged" in again
        out = cli(db_url, "dist", "rollout", DIST, rid, *h).output
        assert "Succeeded" in out
        css = (hub / "targets/web/dist/tokens.css").read_text()
    assert css  # the web target got the frozen release's CSS


def test_sources_that_differ_from_the_record_are_refused(db_url: str, tmp_path: Path) -> None:
    repo = patterns_repo(tmp_path)
    shutil.rmtree(repo / ".git")  # no commit recorded: the working tree must match exactly
    rid = json.loads(cli(db_url, "patterns", "release", "--hub", str(repo), "--json").output)["id"]
    spec = repo / "api" / "orders.openapi.yaml"
    spec.write_text(spec.read_text().replace("title:", "title: changed", 1))
    with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _):
        out = cli(
            db_url, "dist", "release", rid, "--patterns", str(repo), "--hub", str(hub), code=1
        )
        assert "not the release's" in out.output
        assert not (hub / "releases" / rid).exists()  # nothing half-written
