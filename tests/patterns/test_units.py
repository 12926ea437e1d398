"""Smaller pieces: canonical JSON, the position-keeping readers, hubs without a resolver."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spokehub.patterns import (
    PatternNotFound,
    PatternValidationError,
    build,
    canonical_json,
    digest,
    load_hub,
)
from spokehub.patterns.errors import Diagnostic, Position, VersionTooLow
from spokehub.patterns.release import Release, plan_release
from spokehub.patterns.source import SourceSyntaxError, load_json, load_yaml

MANIFEST = """apiVersion: spokehub.dev/v1alpha1
kind: Pattern
metadata: {{id: {pid}, owner: o, license: MIT, version: {version}}}
spec:
  kind: {kind}
  sources: [{sources}]
"""


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"b": 1, "a": [True, None, 1.5]}, '{"a":[true,null,1.5],"b":1}'),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (123456789.0, "123456789"),
        (0.000001, "0.000001"),
        (-0.0, "0"),
        ('é\n\u0001"', '"é\\n\\u0001\\""'),
        ({"\U0001f600": 2, "\u20ac": 1, "a": 3}, '{"a":3,"\u20ac":1,"\U0001f600":2}'),
        ({"\uff5e": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\uff5e":1}'),  # UTF-16, not code points
    ],
)
def test_rfc8785(value: object, text: str) -> None:
    assert canonical_json(value) == text.encode()


def test_canonical_rejects_what_is_not_json() -> None:
    with pytest.raises(ValueError, match="finite"):
        canonical_json(math.inf)
    with pytest.raises(TypeError, match="not JSON data"):
        canonical_json({1, 2})
    assert digest({"a": 1}) == digest({"a": 1.0})


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ('{"a": tru}', 1, 7, "unexpected character 't'"),
        ('{"a": 1}\n  x', 2, 3, "extra data"),
        ('{"a" 1}', 1, 6, "expected ':'"),
        ("[1 2]", 1, 4, "expected ',' or ']'"),
        ('{"a": 1 "b": 2}', 1, 9, "expected ',' or '}'"),
        ('{"a": "x', 1, 7, "Unterminated string"),
        ("", 1, 1, "unexpected end of file"),
    ],
)
def test_json_errors_have_positions(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(SourceSyntaxError) as caught:
        load_json(text, "f.json")
    d = caught.value.diagnostic
    assert (d.position.line, d.position.column) == (line, column)
    assert message in d.message


def test_json_and_yaml_positions() -> None:
    doc = load_json('{\n  "a": [1, {"b": -2.5e1}],\n  "a": {}\n}', "f.json")
    assert doc.value == {"a": {}}
    assert doc.positions[("a",)] == (3, 3)
    assert doc.duplicates == [(("a",), (3, 3))]
    assert doc.position(("a", "zz")).line == 3
    y = load_yaml("x:\n  - 1\n  - {k: v}\nx: 2\n", "f.yaml")
    assert y.positions[("x", 1, "k")] == (3, 6)
    assert y.duplicates
    assert load_yaml("", "e.yaml").value is None
    with pytest.raises(SourceSyntaxError, match="malformed YAML"):
        load_yaml("a: [", "bad.yaml")


def test_diagnostics_render() -> None:
    d = Diagnostic("c", "bad", Position("f", 1, 2), "#/a", "warning")
    assert str(d) == "f:1:2: warning: bad [c] (#/a)"
    many = [Diagnostic("c", f"e{i}", Position("f", i, 1)) for i in range(25)]
    assert "and 5 more" in str(PatternValidationError(many))
    assert PatternValidationError(many).to_dict()["diagnostics"][0]["line"] == 0


def _hub(tmp: Path, manifests: str, files: dict[str, str]) -> Path:
    (tmp / "patterns").mkdir(parents=True)
    (tmp / "patterns" / "p.yaml").write_text(manifests)
    for rel, text in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(text)
    return tmp


def test_hub_without_resolver_merges_sources_in_order(tmp_path: Path) -> None:
    hub = _hub(
        tmp_path,
        MANIFEST.format(pid="t", version="1.0.0", kind="design-tokens", sources="'t/*.json'")
        + "---\n"
        + MANIFEST.format(pid="t", version="1.0.0", kind="doc", sources="'doc.md'"),
        {
            "t/a.json": json.dumps({"n": {"$type": "number", "x": {"$value": 1}}}),
            "t/b.json": json.dumps({"n": {"x": {"$value": 2}}}),
            "t/c.json": "{oops",
            "doc.md": "# hi",
        },
    )
    loaded = load_hub(hub)
    assert [d.code for d in loaded.diagnostics] == ["duplicate_pattern"]
    tokens = loaded.get("t").tokens()
    assert tokens.tokens["n.x"].value == 2
    assert [d.code for d in tokens.diagnostics] == ["json_syntax"]
    with pytest.raises(PatternNotFound, match="known: t"):
        loaded.get("nope")
    with pytest.raises(PatternNotFound, match="no manifests"):
        load_hub(tmp_path / "empty")


def test_missing_sources_and_resolver_are_reported(tmp_path: Path) -> None:
    text = MANIFEST.format(pid="t", version="1.0.0", kind="design-tokens", sources="'none/*'")
    hub = _hub(tmp_path, text.replace("spec:\n", "spec:\n  resolver: gone.json\n"), {})
    codes = {d.code for d in load_hub(hub).validate()}
    assert codes == {"no_sources", "no_resolver"}


def test_openapi_checks_and_digest_fallback(tmp_path: Path) -> None:
    hub = _hub(
        tmp_path,
        MANIFEST.format(pid="api", version="1.0.0", kind="openapi", sources="'api.yaml'"),
        {"api.yaml": "openapi: 3.0.0\ninfo: {}\npaths:\n  orders: {get: 1}\n"},
    )
    loaded = load_hub(hub)
    messages = [d.message for d in loaded.validate()]
    assert messages == [
        "openapi must be a 3.1.x version",
        "info.title is required",
        "path 'orders' must start with '/'",
        "an operation must be an object",
    ]
    with pytest.raises(PatternValidationError):
        build(loaded.get("api"), "api-docs")
    (hub / "api.yaml").write_text("openapi: 3.1.0\ninfo: {title: A, version: '1'}\npaths: {}\n")
    fresh = load_hub(hub)
    parent = Release(
        "rel-x",
        "sha256:x",
        {"patterns": {"api": {"version": "1.0.0", "digest": "sha256:old"}}, "sourceCommit": None},
        0.0,
    )
    with pytest.raises(VersionTooLow, match=r"requires 1\.0\.1"):
        plan_release(fresh, created_by="a", parent=parent, source_commit="")
    (hub / "patterns" / "p.yaml").write_text(
        MANIFEST.format(pid="api", version="1.0.1", kind="openapi", sources="'api.yaml'")
    )
    release, diffs = plan_release(load_hub(hub), created_by="a", parent=parent, source_commit="")
    assert release.parent == "rel-x"
    assert diffs[0].bump == "patch"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(value=json_values, indent=st.sampled_from([None, 1, 2]))
def test_reader_agrees_with_the_standard_library(value: object, indent: int | None) -> None:
    text = json.dumps(value, indent=indent)
    doc = load_json(text, "f.json")
    assert doc.value == json.loads(text)
    for path in doc.positions:
        pos = doc.position(path)
        assert 1 <= pos.line <= text.count("\n") + 1
