"""The ``spokehub dist`` commands and ``spokehub demo`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from spokehub.cli.app import app
from spokehub.distribution.demo.scenario import DIST
from tests.dist_support import AUTO_GATE, demo_hub, release

runner = CliRunner()


def cli(db: str, *args: str, code: int = 0) -> Result:
    result = runner.invoke(app, ["--db", db, *args], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result


def test_plan_rollout_rollback_drift_status_audit(sqlite_url: str, tmp_path: Path) -> None:
    with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _):
        h = ["--hub", str(hub)]
        out = cli(sqlite_url, "dist", "plan", DIST, "r1", *h, "--detailed-exitcode", code=2).output
        assert "+ create   dist/tokens.css" in out
        assert "Plan: 25 to create, 0 to update, 0 to delete" in out
        assert "+:root {" in out
        digest = json.loads(cli(sqlite_url, "dist", "plan", DIST, "r1", *h, "--json").output)[
            "digest"
        ]
        stale = cli(sqlite_url, "dist", "rollout", DIST, "r1", *h, "--plan", "sha256:0", code=4)
        assert "the world changed since plan" in stale.output
        out = cli(sqlite_url, "dist", "rollout", DIST, "r1", *h, "--plan", digest).output
        assert "Succeeded" in out
        assert "analysis content-smoke/entries-present@cms-staging: Successful" in out
        out = cli(sqlite_url, "dist", "plan", DIST, *h, "--detailed-exitcode", "--no-diff").output
        assert "Plan: 0 to create, 0 to update, 0 to delete, 25 unchanged" in out
        release(hub, "r2", "1.0.1", [0.0, 0.3, 0.7])
        cli(sqlite_url, "dist", "rollout", DIST, "r2", *h)
        out = cli(
            sqlite_url, "dist", "rollback", DIST, "--to", "r1", *h, "--reason", "bad blue"
        ).output
        assert "Succeeded" in out
        assert "analysis" not in out  # inside the rollback window: analysis skipped
        css = hub / "targets/android/res/values/colors.xml"
        css.write_text(css.read_text().replace("#FF0066CC", "#FF000000"))
        out = cli(sqlite_url, "dist", "drift", DIST, *h, code=2).output
        assert "Modified     res/values/colors.xml" in out
        assert '-  <color name="color_blue_600">#FF0066CC</color>' in out  # the toolchain's XML
        status = cli(sqlite_url, "dist", "status", DIST, *h).output
        assert "android" in status
        assert "r1: Succeeded" in status
        assert "r2: Succeeded" in status
        assert "promotion.started" in cli(sqlite_url, "dist", "audit", DIST).output
        trail = json.loads(
            cli(sqlite_url, "dist", "audit", DIST, "--release", "r1", "--json").output
        )
        started = [e["detail"] for e in trail if e["kind"] == "promotion.started"]
        assert started[-1]["mode"] == "rollback"
        assert started[-1]["skip_analysis"] is True
        assert "inside the rollbackWindow" in started[-1]["why"]
        assert "valid" in cli(sqlite_url, "dist", "audit", DIST, "--verify").output
        missing = cli(sqlite_url, "dist", "rollback", DIST, "--to", "r9", *h, code=1)
        assert "never succeeded" in missing.output


def test_bad_manifests_exit_2_with_file_and_line(sqlite_url: str, tmp_path: Path) -> None:
    with demo_hub(tmp_path, edit={"adapter: registry": "adapter: npm"}) as (hub, _, _):
        out = cli(sqlite_url, "dist", "plan", DIST, "r1", "--hub", str(hub), code=2).output
    assert "hub.yaml:" in out
    assert "adapter 'npm' is not installed" in out


def test_the_demo_command(sqlite_url: str, tmp_path: Path) -> None:
    out = cli(sqlite_url, "demo", "--dir", str(tmp_path)).output
    assert "rollout r1: Succeeded" in out
    assert "healed: dist/tokens.css, token/color-accent" in out
    assert "spokehub serve" in out
    again = cli(sqlite_url, "demo", "--dir", str(tmp_path)).output
    assert "writes to targets in this run: 0" in again


def test_without_the_extra_the_error_says_what_to_install(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "cel_expr_python" else real(name, *a),
    )
    out = cli(sqlite_url, "demo", "--dir", str(tmp_path), code=2).output
    assert "pip install 'spokehub[distribution]'" in out


def test_a_manual_gate_waits_for_approve_then_resume(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "releases/r1/web").mkdir(parents=True)
    (tmp_path / "releases/r1/web/a.txt").write_text("a\n")
    head = "apiVersion: spokehub.dev/v1alpha1\n"
    (tmp_path / "manifests/h.yaml").write_text(
        head + "kind: Target\nmetadata: {name: web, labels: {ring: '1'}}\n"
        "spec: {adapter: fs, config: {path: out/web}}\n---\n"
        + head
        + "kind: Distribution\nmetadata: {name: d}\nspec:\n  source: {use: files}\n"
        "  targets: {selector: {matchLabels: {ring: '1'}}}\n  rollout: r\n---\n"
        + head
        + "kind: Rollout\nmetadata: {name: r}\nspec:\n"
        "  waves: [{name: broad, targets: {matchLabels: {ring: '1'}}, gate: manual}]\n"
    )
    hub = ["--hub", str(tmp_path)]
    waiting = cli(sqlite_url, "dist", "rollout", "d", "r1", *hub, "--id", "gate-1").output
    assert "waits for approval promote:broad" in waiting
    again = cli(sqlite_url, "dist", "resume", "gate-1").output
    assert "waits for approval promote:broad" in again  # nobody decided yet
    cli(sqlite_url, "approve", "gate-1", "--name", "promote:broad")
    assert "Succeeded" in cli(sqlite_url, "dist", "resume", "gate-1").output
    assert (tmp_path / "out/web/a.txt").read_text() == "a\n"
    watch = cli(sqlite_url, "dist", "drift", "d", *hub, "--every", "1s", "--rounds", "1").output
    assert watch.strip()
