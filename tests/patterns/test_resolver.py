"""The Resolver module: sets, modifiers, inputs, last-wins merging, explain; manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spokehub.patterns import PatternValidationError, load_hub, load_resolver
from tests.patterns.support import HUB, copy_hub


def _write(tmp: Path, resolver: dict, files: dict[str, dict]) -> Path:
    for name, body in files.items():
        (tmp / name).write_text(json.dumps(body, indent=2))
    path = tmp / "resolver.json"
    path.write_text(json.dumps(resolver, indent=2))
    return path


N = {"n": {"$type": "number", "a": {"$value": 1}, "b": {"$value": "{n.a}"}}}


def test_last_wins_and_aliases_see_the_merged_tree(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "version": "2025.10",
            "sets": {"base": {"sources": [{"$ref": "n.json"}, {"n": {"a": {"$value": 2}}}]}},
            "modifiers": {
                "size": {"default": "s", "contexts": {"s": [], "l": [{"n": {"a": {"$value": 9}}}]}}
            },
            "resolutionOrder": [{"$ref": "#/sets/base"}, {"$ref": "#/modifiers/size"}],
        },
        {"n.json": N},
    )
    r = load_resolver(path, root=tmp_path)
    assert r.diagnostics == []
    assert r.resolve().tokens["n.b"].value == 2  # the inline source came later: it wins
    assert r.resolve({"size": "l"}).tokens["n.b"].value == 9
    assert r.permutations() == [{"size": "s"}, {"size": "l"}]
    explained = r.explain("n.a", {"size": "l"})
    assert [c.origin for c in explained.contributions] == [
        "set:base",
        "set:base",
        "modifier:size=l",
    ]
    assert explained.contributions[-1].position.file == "resolver.json"
    assert r.explain("n.b").alias_chain == ["n.b", "n.a"]


def test_bad_inputs_are_all_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "version": "2025.10",
            "modifiers": {
                "theme": {"contexts": {"light": [], "dark": []}},
                "size": {"default": "s", "contexts": {"s": [], "l": []}},
            },
            "resolutionOrder": [{"$ref": "#/modifiers/theme"}, {"$ref": "#/modifiers/size"}],
        },
        {},
    )
    r = load_resolver(path)
    with pytest.raises(PatternValidationError) as caught:
        r.resolve({"colour": "x", "size": "xl"})
    codes = sorted(d.code for d in caught.value.diagnostics)
    assert codes == ["missing_input", "unknown_context", "unknown_modifier"]
    assert all(d.position.line > 0 for d in caught.value.diagnostics)
    assert "known: l" not in str(caught.value) or "s, l" in str(caught.value)


def test_structural_errors(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "version": "2024",
            "sets": {"a": {"sources": [{"$ref": "#/modifiers/m"}]}, "b": {"nope": 1}},
            "modifiers": {
                "m": {"default": "zz", "contexts": {"only": []}},
                "e": {"contexts": {}},
            },
            "resolutionOrder": [
                {"$ref": "#/sets/missing"},
                {"type": "set"},
                {"type": "set", "name": "x", "sources": [{"$ref": "gone.json"}]},
            ],
            "extra": 1,
        },
        {},
    )
    r = load_resolver(path)
    codes = sorted(d.code for d in r.diagnostics)
    assert codes == sorted(
        [
            "resolver_version",
            "bad_reference",
            "sources",
            "modifier_default",
            "modifier_contexts",
            "modifier_contexts",
            "missing_reference",
            "resolution_order",
            "unknown_property",
        ]
    )
    warning = [d for d in r.diagnostics if d.severity == "warning"]
    assert len(warning) == 1
    assert "at least two" in warning[0].message
    with pytest.raises(PatternValidationError, match="modifier 'e' has no default"):
        r.resolve({"m": "only"})
    del r.modifiers["e"]
    tokens = r.resolve({"m": "only"})
    assert any(d.code == "source_missing" for d in tokens.diagnostics)


def test_malformed_resolver_file(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text('{"version": "2025.10",\n  "sets": [}')
    with pytest.raises(PatternValidationError) as caught:
        load_resolver(tmp_path / "r.json")
    d = caught.value.diagnostics[0]
    assert (d.code, d.position.line) == ("json_syntax", 2)


def test_hub_fixture_is_valid_and_themed() -> None:
    hub = load_hub(HUB)
    assert [d for d in hub.validate() if d.severity == "error"] == []
    tokens = hub.get("ds.tokens.core")
    sets = tokens.token_sets()
    assert [inputs for inputs, _ in sets] == [{"theme": "light"}, {"theme": "dark"}]
    assert sets[1][1].tokens["color.bg"].alias_of == "color.gray.900"
    assert sets[0][1].tokens["color.text.muted"].deprecated == "use color.text.subtle"


def test_manifest_errors_name_file_line_and_key(tmp_path: Path) -> None:
    hub = copy_hub(tmp_path)
    (hub / "patterns" / "bad.yaml").write_text(
        "apiVersion: spokehub.dev/v1alpha1\nkind: Pattern\nmetadata:\n  id: Bad Id\n"
        "  owner: x\n  license: MIT\n  version: 1.0\n  colour: red\nspec:\n"
        "  kind: spreadsheet\n  sources: []\n"
    )
    (hub / "patterns" / "broken.yaml").write_text("kind: Pattern\nmetadata: [\n")
    loaded = load_hub(hub)
    found = {(d.position.file, d.position.line, d.pointer) for d in loaded.diagnostics}
    assert ("patterns/bad.yaml", 4, "#/metadata/id") in found
    assert ("patterns/bad.yaml", 7, "#/metadata/version") in found
    assert ("patterns/bad.yaml", 8, "#/metadata/colour") in found
    assert ("patterns/bad.yaml", 10, "#/spec/kind") in found
    assert ("patterns/bad.yaml", 11, "#/spec/sources") in found
    assert any(
        d.code == "yaml_syntax" and d.position.file == "patterns/broken.yaml"
        for d in loaded.diagnostics
    )
    assert set(loaded.patterns) == {"ds.tokens.core", "api.orders"}


def test_reference_rules(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "version": "2025.10",
            "sets": {
                "loop": {"sources": [{"$ref": "#/sets/loop"}]},
                "ok": {"sources": [{"$ref": "n.json#/n"}]},
            },
            "modifiers": {
                "m": {
                    "contexts": {"a": [{"$ref": "#/modifiers/m"}], "b": [{"$ref": "#/sets/ok"}]},
                    "default": "b",
                },
            },
            "resolutionOrder": [
                {"$ref": "#/resolutionOrder/0"},
                {"type": "set", "name": "dup", "sources": []},
                {"type": "set", "name": "dup", "sources": []},
                {"$ref": "#/modifiers/m"},
            ],
        },
        {"n.json": {"n": {"$type": "number", "a": {"$value": 1}}}},
    )
    r = load_resolver(path, root=tmp_path)
    codes = sorted(d.code for d in r.diagnostics)
    assert codes == ["bad_reference", "duplicate_name", "missing_reference", "reference_cycle"]
    # a file source with a fragment: the tokens under #/n of n.json, positions kept
    tokens = r.resolve({"m": "b"})
    assert tokens.tokens["a"].value == 1
    assert tokens.tokens["a"].position.file == "n.json"
