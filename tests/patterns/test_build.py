"""Builds: every platform, determinism across folders and processes, listing, caching."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spokehub.patterns import (
    PLATFORMS,
    BuildCache,
    PatternError,
    PatternValidationError,
    build,
    load_hub,
)
from tests.patterns.support import HUB, copy_hub, edit_json

SCRIPT = """
import sys, json
from spokehub.patterns import load_hub, build
hub = load_hub(sys.argv[1])
out = {}
for pid, p in sorted(hub.patterns.items()):
    from spokehub.patterns import platforms_for
    for plat in platforms_for(p):
        out[f"{pid}/{plat}"] = build(p, plat).digests
print(json.dumps(out, sort_keys=True))
"""


def test_two_processes_in_two_folders_are_byte_identical(tmp_path: Path) -> None:
    a = copy_hub(tmp_path / "a")
    b = copy_hub(tmp_path / "b")
    runs = [
        subprocess.run(
            [sys.executable, "-c", SCRIPT, str(h)],
            check=True,
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed},
        )
        for h, seed in ((a, "1"), (b, "2"))
    ]
    first, second = (json.loads(r.stdout) for r in runs)
    assert first == second
    assert set(first) == {f"ds.tokens.core/{p}" for p in PLATFORMS[:7]} | {
        "api.orders/api-docs",
        "api.orders/guide",
    }


def test_outputs_and_listing() -> None:
    hub = load_hub(HUB)
    tokens = hub.get("ds.tokens.core")
    css = build(tokens, "css").files["tokens.css"].decode()
    assert "--color-bg: var(--color-gray-100);" in css
    assert "[data-theme='dark'] {\n  --color-bg: var(--color-gray-900);" in css
    assert "--component-card-border: var(--space-1) var(--line-solid) var(--color-blue-600);" in css
    assert "pattern ds.tokens.core@1.0.0 (source sha256:" in css
    assert "20" not in css.split("*/")[0].split("source")[0]  # no dates in the header
    swift = build(tokens, "swift").files["DesignTokens.swift"].decode()
    assert '@available(*, deprecated, message: "use color.text.subtle")' in swift
    assert "Color(.sRGB, red: 0, green: 0.4, blue: 0.8, opacity: 1)" in swift
    android = build(tokens, "android").files
    assert b'<color name="color_blue_600">#FF0066CC</color>' in android["values/colors.xml"]
    assert b'<color name="color_bg">#FF121212</color>' in android["values-night/colors.xml"]
    assert b'<dimen name="font_size_body">16sp</dimen>' in android["values/dimens.xml"]
    assert b'<dimen name="space_2">8dp</dimen>' in android["values/dimens.xml"]
    md = build(tokens, "markdown").files["tokens.md"].decode()
    assert "background:#0066cc" in md
    assert "**deprecated: use color.text.subtle**" in md
    ts = build(tokens, "ts").files["tokens.ts"].decode()
    assert "export const tokens_dark: Tokens" in ts
    assert '"color.bg": DimensionValue' not in ts
    scss = build(tokens, "scss").files["_tokens.scss"].decode()
    assert "$color-bg: $color-gray-100;" in scss
    assert "$theme-dark: (" in scss
    dark = json.loads(build(tokens, "dtcg-json").files["tokens.dark.json"])
    assert dark["color"]["bg"]["$value"]["components"] == [0.07, 0.07, 0.07]
    assert dark["color"]["text"]["muted"]["$deprecated"] == "use color.text.subtle"
    assert dark["$extensions"]["dev.spokehub"]["inputs"] == {"theme": "dark"}
    figma = {"com.example.figma": {"variableId": "VariableID:1:2"}}
    assert dark["opacity"]["muted"]["$extensions"] == figma  # unknown extensions preserved
    listing = json.loads(build(tokens, "css").files["listing.json"])
    entry = listing["outputs"]["tokens.css"]["names"]["--color-bg"]
    assert entry == {"token": "color.bg", "file": "tokens/themes/light.tokens.json", "line": 1}
    assert listing["outputs"]["tokens.css"]["names"]["--color-blue-600"]["line"] == 5


def test_api_docs_variants_leave_out_internal_parts() -> None:
    files = build(load_hub(HUB).get("api.orders"), "api-docs").files
    public, internal = files["api.md"].decode(), files["api-internal.md"].decode()
    assert "reindex" not in public.lower()
    assert "IndexStats" not in public
    assert "/admin/reindex" in internal
    assert "*(internal)*" in internal
    assert "`GET /orders/{id}`" in public


def test_cache_key_skips_recompute_and_fragments_rerender_only_changes(tmp_path: Path) -> None:
    hub_dir = copy_hub(tmp_path)
    cache = BuildCache(folder=tmp_path / "cache")
    first = build(load_hub(hub_dir).get("ds.tokens.core"), "css", cache=cache)
    assert not first.cached
    again = build(
        load_hub(hub_dir).get("ds.tokens.core"), "css", cache=BuildCache(folder=tmp_path / "cache")
    )
    assert again.cached
    assert again.files == first.files
    before = cache.fragments.misses
    edit_json(
        hub_dir / "tokens" / "primitives.tokens.json",
        lambda d: d["opacity"]["muted"].update({"$value": 0.5}),
    )
    changed = build(load_hub(hub_dir).get("ds.tokens.core"), "css", cache=cache)
    assert not changed.cached
    assert changed.digest != first.digest
    assert cache.fragments.misses - before == 1  # only the changed token was re-rendered
    params = build(
        load_hub(hub_dir).get("ds.tokens.core"), "css", cache=cache, params={"prefix": "ds-"}
    )
    assert params.cache_key != changed.cache_key
    assert b"--ds-color-bg" in params.files["tokens.css"]


def test_bad_builds(tmp_path: Path) -> None:
    hub_dir = copy_hub(tmp_path)
    hub = load_hub(hub_dir)
    with pytest.raises(PatternError, match="cannot be built for 'css'"):
        build(hub.get("api.orders"), "css")
    with pytest.raises(PatternError, match="unknown parameter 'colour'"):
        build(hub.get("ds.tokens.core"), "css", params={"colour": 1})
    edit_json(
        hub_dir / "tokens" / "semantic.tokens.json",
        lambda d: d["color"].update({"oops": {"$value": "{color.nope}"}}),
    )
    with pytest.raises(PatternValidationError, match="does not name a token"):
        build(load_hub(hub_dir).get("ds.tokens.core"), "css")


def test_write_creates_the_files(tmp_path: Path) -> None:
    result = build(load_hub(HUB).get("ds.tokens.core"), "android")
    written = result.write(tmp_path / "out")
    assert (tmp_path / "out" / "values-night" / "colors.xml").read_bytes() == result.files[
        "values-night/colors.xml"
    ]
    assert len(written) == len(result.files)
    assert result.to_dict()["files"] == result.digests
