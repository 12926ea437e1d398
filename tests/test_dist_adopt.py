"""``adopt``: a hand edit at a target becomes a change to the token source (patch and branch)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from spokehub.cli.app import app
from spokehub.distribution import audit
from spokehub.distribution.demo.scenario import DIST
from spokehub.distribution.drift_schedule import check_now
from tests.dist_support import AUTO_GATE, demo_hub, real_client, rollout

ADOPT = {
    **AUTO_GATE,
    "drift: {mode: correct, correctionBudget: {max: 3, per: 1h}}": "drift: {mode: adopt}",
    "config: {path: targets/android}\n  drift: {mode: detect}": (
        "config: {path: targets/android}\n  drift: {mode: adopt}"
    ),
    "drift: {mode: correct}": "drift: {mode: adopt}",
}
SOURCE = "releases/r1/tokens/primitives.tokens.json"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _commit_hub(hub: Path) -> str:
    git(hub, "init", "-q", "-b", "main")
    git(hub, "add", "releases", "manifests")
    git(hub, "-c", "user.name=dev", "-c", "user.email=dev@localhost", "commit", "-qm", "hub")
    return git(hub, "rev-parse", "HEAD").strip()


def _check(client: Any, hub: Path) -> list[dict[str, Any]]:
    run = asyncio.run(check_now(client, hub, DIST))
    assert isinstance(run.result, dict), run
    return list(run.result["targets"])


def test_a_css_value_edit_becomes_a_token_patch_and_a_one_commit_branch(
    db_url: str, tmp_path: Path
) -> None:
    with demo_hub(tmp_path, edit=ADOPT) as (hub, _, _):
        client = real_client(db_url)
        assert rollout(client, hub, "r1")["status"] == "Succeeded"
        head = _commit_hub(hub)
        source_before = (hub / SOURCE).read_text()
        css = hub / "targets/web/dist/tokens.css"
        css.write_text(
            css.read_text().replace("--color-blue-600: #0066cc;", "--color-blue-600: #123456;")
        )
        xml = hub / "targets/android/res/values/colors.xml"
        xml.write_text(
            xml.read_text().replace(
                "</resources>", '  <color name="x">#FF000000</color>\n</resources>'
            )
        )
        reports = {r["target"]: r for r in _check(client, hub)}
        shown = CliRunner().invoke(app, ["--db", db_url, "dist", "drift", DIST, "--hub", str(hub)])
        assert shown.exit_code == 2, shown.output  # adopt proposes; the drift remains
        again = {r["target"]: r for r in _check(client, hub)}
        trail = asyncio.run(audit.entries(client.store, distribution=DIST))
        client.close()

        [web] = reports["web"]["adoptions"]
        assert web["kind"] == "source", web
        assert web["patch"] == "proposals/web/dist__tokens.css.source.patch"
        assert [t["token"] for t in web["tokens"]] == ["color.blue.600"]
        assert web["tokens"][0]["file"] == "tokens/primitives.tokens.json"
        patch = hub / web["patch"]
        git(hub, "apply", "--check", str(patch))  # applies cleanly to the hub's source
        # Applied to a copy of the source, the patch gives the branch's file byte for byte.
        scratch = tmp_path / "scratch"
        (scratch / SOURCE).parent.mkdir(parents=True)
        (scratch / SOURCE).write_text(source_before)
        git(scratch, "apply", str(patch))
        # The branch: one commit on main, changing only the token file, only that $value.
        branch = web["branch"]
        assert branch.startswith("spokehub/adopt/web/"), web
        assert git(hub, "rev-list", "--count", f"main..{branch}").strip() == "1"
        assert git(hub, "diff", "--name-only", "main", branch).split() == [SOURCE]
        old = json.loads(source_before)
        assert (scratch / SOURCE).read_text() == git(hub, "show", f"{branch}:{SOURCE}")
        new = json.loads(git(hub, "show", f"{branch}:{SOURCE}"))
        assert new["color"]["blue"]["600"]["$value"] == {
            "colorSpace": "srgb",
            "components": [0.0706, 0.2039, 0.3373],
            "hex": "#123456",
        }
        new["color"]["blue"]["600"]["$value"] = old["color"]["blue"]["600"]["$value"]
        assert new == old
        # Nothing of the checkout moved: branch, HEAD, index, working tree.
        assert git(hub, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
        assert git(hub, "rev-parse", "HEAD").strip() == head
        assert (hub / SOURCE).read_text() == source_before
        assert git(hub, "status", "--porcelain", "--untracked-files=no") == ""
        # The same edit checked again proposes the same branch, not a second one.
        assert again["web"]["adoptions"][0]["branch"] == branch
        assert again["web"]["adoptions"][0]["branch_note"] == "already proposed"
        assert f"proposed source change: {branch}" in shown.output
        assert len(git(hub, "branch", "--list", "spokehub/adopt/*").split()) == 1

        [android] = reports["android"]["adoptions"]
        assert android["kind"] == "rendered"
        assert "structural" in android["reason"]
        assert android["branch"] == ""
        text = (hub / android["patch"]).read_text()
        assert text.startswith("spokehub adopt: android res/values/colors.xml is not mapped")
        assert '+  <color name="x">#FF000000</color>' in text

        kinds = [e.kind for e in trail if e.target == "web"]
        assert "adopt.proposed" in kinds
        proposed = [e.detail for e in trail if e.kind == "adopt.proposed" and e.target == "web"]
        assert proposed[0]["branch"] == branch


def test_entries_alias_and_no_repository(db_url: str, tmp_path: Path) -> None:
    """A CMS entry edited in every theme maps to its token; one theme of a token shared by
    both does not (the rebuild would change the other); an alias edited as a value does not;
    without a git repository there is a patch and no branch."""
    with demo_hub(tmp_path, edit=ADOPT) as (hub, cms, _):
        client = real_client(db_url)
        assert rollout(client, hub, "r1")["status"] == "Succeeded"
        both = {"name": "color.gray.200", "light": "#eeeeee", "dark": "#eeeeee"}
        cms.edit("staging", "token/color-gray-200", both)
        one = {"name": "color.gray.800", "light": "#444444", "dark": "#333333"}
        cms.edit("staging", "token/color-gray-800", one)
        xml = hub / "targets/android/res/values/colors.xml"
        text = xml.read_text()
        assert '<color name="color_accent">#FF0066CC</color>' in text
        xml.write_text(text.replace('"color_accent">#FF0066CC', '"color_accent">#FF123456'))
        css = hub / "targets/web/dist/tokens.css"
        dark = "[data-theme='dark'] {\n  --color-bg: var(--color-gray-900);"
        assert dark in css.read_text()
        css.write_text(css.read_text().replace(dark, dark.replace("gray-900", "gray-800")))
        theme_file = hub / "releases/r1/tokens/themes/dark.tokens.json"
        theme_before = theme_file.read_text()
        source_before = (hub / SOURCE).read_text()
        reports = {r["target"]: r for r in _check(client, hub)}
        client.close()
    by_key = {a["key"]: a for a in reports["cms-staging"]["adoptions"]}
    gray200 = by_key["token/color-gray-200"]
    assert gray200["kind"] == "source", gray200
    assert {(t["token"], t["theme"]) for t in gray200["tokens"]} == {
        ("color.gray.200", "light"),
        ("color.gray.200", "dark"),
    }
    assert gray200["branch"] == ""
    assert gray200["branch_note"] == "the hub folder is not in a git repository"
    patch = (hub / gray200["patch"]).read_text()
    assert "+++ b/releases/r1/tokens/primitives.tokens.json" in patch
    assert "+            0.9333," in patch  # 0xee / 255
    gray800 = by_key["token/color-gray-800"]
    assert gray800["kind"] == "rendered"
    assert "does not give the edit" in gray800["reason"]
    [accent] = reports["android"]["adoptions"]
    assert accent["kind"] == "rendered"
    assert "color.accent is an alias of color.blue.600" in accent["reason"]
    assert (hub / SOURCE).read_text() == source_before  # a proposal never edits the source
    assert theme_file.read_text() == theme_before
    # In the dark block, var(--color-gray-800) is the alias {color.gray.800} in the dark theme.
    [web] = reports["web"]["adoptions"]
    assert web["kind"] == "source", web
    assert [(t["token"], t["theme"], t["file"], t["after"]) for t in web["tokens"]] == [
        ("color.bg", "[data-theme='dark']", "tokens/themes/dark.tokens.json", "{color.gray.800}")
    ]
    assert '+      "$value": "{color.gray.800}"' in (hub / web["patch"]).read_text()
