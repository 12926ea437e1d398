"""The ``patterns`` source: targets get what ``spokehub.patterns`` builds, bad input is refused."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spokehub.cli.app import app
from spokehub.distribution.demo.hubfiles import write_release
from spokehub.distribution.demo.scenario import DIST
from spokehub.distribution.errors import DistributionError
from spokehub.distribution.source import TargetView, TransformStep, UnknownRelease, load_source
from spokehub.distribution.toolchain import PatternsSource
from spokehub.patterns import build, load_hub
from tests.dist_support import demo_hub

WEB = TargetView("web", "fs", {"platform": "web"})


def step(use: str, **params: object) -> TransformStep:
    return TransformStep(use, use, dict(params))


@pytest.fixture
def source(tmp_path: Path) -> PatternsSource:
    write_release(tmp_path, "r1", "1.0.0")
    return PatternsSource(tmp_path)


def test_builds_are_the_toolchains_under_the_key_prefix(source: PatternsSource) -> None:
    out = source.render("r1", WEB, [step("patterns.build", platform="android", into="res/")])
    tokens = load_hub(source.base / "r1").get("ds.tokens.core")
    expected = build(tokens, "android").files
    assert out == {f"res/{k}": v for k, v in expected.items() if k != "listing.json"}
    listed = source.render("r1", WEB, [step("patterns.build", platform="css", listing=True)])
    assert json.loads(listed["listing.json"])["pattern"] == "ds.tokens.core"


def test_entries_hold_every_theme_and_the_release_digest_is_the_patterns(
    source: PatternsSource,
) -> None:
    out = source.render("r1", WEB, [step("patterns.entries", types=["color"])])
    assert json.loads(out["token/color-bg"]) == {
        "name": "color.bg",
        "light": "#f5f5f5",
        "dark": "#1a1a1a",
    }
    assert "token/space-md" not in out
    hub = load_hub(source.base / "r1")
    event = json.loads(
        source.render("r1", WEB, [step("event.release-promoted")])["events/release.promoted/r1"]
    )
    assert event["patterns"] == {p: hub.get(p).version for p in ("api.orders", "ds.tokens.core")}
    assert event["digest"] == source.release_digest("r1")
    with pytest.raises(UnknownRelease, match="release 'r9' not found"):
        source.release_digest("r9")


def test_concurrent_renders_agree(source: PatternsSource) -> None:
    # Plans render targets on threads; token sets resolve lazily on the shared Pattern.
    steps = [step("patterns.build", platform="css"), step("patterns.entries")]
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda _: source.render("r1", WEB, steps), range(16)))
    assert all(o == outs[0] for o in outs)
    assert b"[data-theme='dark']" in outs[0]["tokens.css"]


def test_bad_sources_and_clashing_keys_are_errors(source: PatternsSource) -> None:
    semantic = source.base / "r1/tokens/semantic.tokens.json"
    semantic.write_text(semantic.read_text().replace("{color.gray.900}", "{color.gray.950}"))
    with pytest.raises(DistributionError, match=r"tokens/semantic\.tokens\.json:\d+"):
        source.render("r1", WEB, [step("patterns.build", platform="css")])
    write_release(source.base.parent, "r2", "1.0.1")
    twice = [step("patterns.build", platform="css"), step("patterns.build", platform="css")]
    with pytest.raises(DistributionError, match=r"writes 'tokens\.css' that another"):
        source.render("r2", WEB, twice)
    with pytest.raises(DistributionError, match="no pattern 'nope'"):
        source.render("r2", WEB, [step("patterns.entries", pattern="nope")])
    manifest = source.base / "r2/patterns/hub.yaml"
    manifest.write_text(manifest.read_text().replace("  format: dtcg/2025.10", "  colour: x"))
    with pytest.raises(DistributionError, match=r"release 'r2' is not valid: patterns/hub\.yaml:"):
        source.release_digest("r2")
    with pytest.raises(DistributionError, match="bad 'with' parameters"):
        load_source(source.base.parent, "patterns", {"folder": "x"})


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{platform: css, into: dist/}", "{platform: kotlin, into: dist/}", "unknown platform"),
        ("{platform: css, into: dist/}", "{into: dist/}", "patterns.build needs with.platform"),
        ("{platform: css, into: dist/}", "{platform: css, to: dist/}", "no parameter 'to'"),
        ("use: patterns.package", "use: patterns.zip", "no transform 'patterns.zip'"),
        ("source: {use: patterns}", "source: {use: pattern}", "use 'files', 'patterns' or"),
    ],
)
def test_bad_transforms_exit_2_with_file_and_line(
    sqlite_url: str, tmp_path: Path, old: str, new: str, message: str
) -> None:
    with demo_hub(tmp_path, edit={old: new}) as (hub, _, _):
        text = (hub / "manifests/hub.yaml").read_text()
        out = CliRunner().invoke(
            app, ["--db", sqlite_url, "dist", "plan", DIST, "r1", "--hub", str(hub)]
        )
    assert out.exit_code == 2, out.output
    assert message in out.output
    line = next(i for i, t in enumerate(text.splitlines(), 1) if new in t)
    assert f"hub.yaml:{line}" in out.output.replace("\n", "")
