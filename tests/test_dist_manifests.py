"""Bad input is refused before anything is applied, with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from spokehub.distribution.errors import ManifestError
from spokehub.distribution.manifests import load_hub, seconds

HEAD = "apiVersion: spokehub.dev/v1alpha1\n"
TARGET = (
    HEAD
    + "kind: Target\nmetadata: {name: web, labels: {platform: web}}\n"
    + "spec:\n  adapter: fs\n  config: {path: out}\n"
)
DIST = (
    HEAD
    + "kind: Distribution\nmetadata: {name: d}\nspec:\n"
    + "  source: {use: files}\n  targets: {selector: {matchLabels: {platform: web}}}\n"
)


def hub(tmp_path: Path, *docs: str) -> Path:
    (tmp_path / "manifests").mkdir(parents=True)
    (tmp_path / "manifests" / "hub.yaml").write_text("---\n".join(docs))
    return tmp_path


def refused(tmp_path: Path, *docs: str) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        load_hub(hub(tmp_path, *docs))
    return info.value


def test_a_good_hub_loads(tmp_path: Path) -> None:
    loaded = load_hub(hub(tmp_path, TARGET, DIST))
    assert set(loaded.targets) == {"web"}
    assert loaded.get("Distribution", "d").spec["source"]["use"] == "files"


def test_unknown_kind_names_file_line_and_the_kinds(tmp_path: Path) -> None:
    err = refused(tmp_path, TARGET, HEAD + "kind: Pipeline\nmetadata: {name: p}\nspec: {}\n")
    assert err.file.endswith("hub.yaml")
    assert err.line == 9
    assert "Pipeline" in str(err)
    assert "kinds are Target" in str(err)


def test_schema_error_points_at_the_value(tmp_path: Path) -> None:
    bad = TARGET.replace("  adapter: fs\n", "  adapter: fs\n  drift: {mode: sometimes}\n")
    err = refused(tmp_path, bad)
    assert err.line == 6
    assert err.path == "/spec/drift/mode"
    assert "sometimes" in str(err)


def test_selector_that_matches_nothing(tmp_path: Path) -> None:
    err = refused(tmp_path, TARGET, DIST.replace("platform: web}}", "platform: tv}}"))
    assert "matches no Target" in str(err)
    assert err.line == 13


def test_transform_cycle(tmp_path: Path) -> None:
    cyc = DIST + "  transforms:\n    - {use: a, needs: [b]}\n    - {use: b, needs: [a]}\n"
    err = refused(tmp_path, TARGET, cyc)
    assert "cycle: a -> b -> a" in str(err)
    assert err.line == 15


def test_adapter_not_installed(tmp_path: Path) -> None:
    err = refused(tmp_path, TARGET.replace("adapter: fs", "adapter: ftp"), DIST)
    assert "'ftp' is not installed" in str(err)
    assert err.line == 5


def test_credentials_that_do_not_resolve(tmp_path: Path) -> None:
    bad = TARGET + "  credentialsRef: env:SPOKEHUB_TEST_NOT_SET_ANYWHERE\n"
    err = refused(tmp_path, bad, DIST)
    assert "SPOKEHUB_TEST_NOT_SET_ANYWHERE is not set" in str(err)
    assert err.line == 7


def test_cel_that_does_not_compile(tmp_path: Path) -> None:
    bad = DIST + '  transforms:\n    - {use: a, when: "target.labels.platform =="}\n'
    err = refused(tmp_path, TARGET, bad)
    assert "CEL does not compile" in str(err)
    assert err.line == 15


def test_missing_references_and_duplicates(tmp_path: Path) -> None:
    assert "no Rollout named 'nope'" in str(
        refused(tmp_path / "a", TARGET, DIST + "  rollout: nope\n")
    )
    assert "defined twice" in str(refused(tmp_path / "b", TARGET, TARGET, DIST))
    rollout = (
        HEAD
        + "kind: Rollout\nmetadata: {name: r}\nspec:\n  waves:\n"
        + "    - {name: w, targets: {matchLabels: {ring: '9'}}}\n"
    )
    err = refused(tmp_path / "c", TARGET, DIST + "  rollout: r\n", rollout)
    assert "selects no target" in str(err)


def test_bad_yaml_has_a_line(tmp_path: Path) -> None:
    err = refused(tmp_path, TARGET + "  config: {path: [unclosed\n")
    assert "not valid YAML" in str(err)
    assert err.line >= 7


def test_durations() -> None:
    assert seconds("500ms", 0) == 0.5
    assert seconds("10m", 0) == 600
    assert seconds(None, 7) == 7
    with pytest.raises(ValueError, match="not a duration"):
        seconds("soon", 0)
