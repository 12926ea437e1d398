"""Typed diffs and computed bumps, on a table of changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spokehub.patterns import VersionTooLow, load_hub
from spokehub.patterns.compare import diff_patterns
from spokehub.patterns.diff import bump_version, check_version, diff_openapi
from tests.patterns.support import copy_hub, edit_json

PRIM = "tokens/primitives.tokens.json"
SEM = "tokens/semantic.tokens.json"


def _rename(d: dict[str, Any]) -> None:
    d["color"]["text"]["quiet"] = d["color"]["text"].pop("subtle")


TABLE = [
    (
        "value",
        PRIM,
        lambda d: d["opacity"]["muted"].update({"$value": 0.5}),
        {("value-changed", "opacity.muted")},
        "patch",
    ),
    (
        "brand rule",
        PRIM,
        lambda d: d["color"]["blue"]["600"]["$value"].update({"components": [0, 0.5, 0.8]}),
        {("value-changed", "color.brand.$root")},
        "minor",
    ),
    (
        "added",
        PRIM,
        lambda d: d["opacity"].update({"x": {"$type": "number", "$value": 1}}),
        {("added", "opacity.x")},
        "minor",
    ),
    ("removed", PRIM, lambda d: d["opacity"].pop("muted"), {("removed", "opacity.muted")}, "major"),
    ("renamed", SEM, _rename, {("renamed", "color.text.subtle")}, "major"),
    (
        "type",
        PRIM,
        lambda d: d["opacity"].update(
            {"muted": {"$type": "dimension", "$value": {"value": 1, "unit": "px"}}}
        ),
        {("type-changed", "opacity.muted")},
        "major",
    ),
    (
        "deprecated",
        PRIM,
        lambda d: d["opacity"]["muted"].update({"$deprecated": True}),
        {("deprecated", "opacity.muted")},
        "minor",
    ),
]


@pytest.mark.parametrize(
    ("name", "file", "change", "expect", "bump"), TABLE, ids=[t[0] for t in TABLE]
)
def test_token_changes(
    tmp_path: Path, name: str, file: str, change: Any, expect: set[tuple[str, str]], bump: str
) -> None:
    before = load_hub(copy_hub(tmp_path / "a")).get("ds.tokens.core")
    hub = copy_hub(tmp_path / "b")
    edit_json(hub / file, change)
    diff = diff_patterns(before, load_hub(hub).get("ds.tokens.core"))
    kinds = {(c.kind, c.subject) for c in diff.changes}
    assert expect <= kinds
    assert diff.bump == bump
    assert diff.ok is (bump == "none")


def test_openapi_changes() -> None:
    old = {
        "openapi": "3.1.0",
        "paths": {
            "/a": {
                "get": {
                    "parameters": [{"name": "q", "in": "query"}],
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/A"}}
                            }
                        }
                    },
                }
            },
            "/gone": {"get": {}},
            "/admin": {"post": {"x-internal": True}},
        },
        "components": {
            "schemas": {
                "A": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "n": {"type": "number"},
                        "s": {"enum": ["x", "y"]},
                        "old": {"type": "string"},
                    },
                }
            }
        },
    }
    new = {
        "openapi": "3.1.0",
        "paths": {
            "/a": {
                "get": {
                    "parameters": [{"name": "q", "in": "query", "required": True}],
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/A"}}
                            }
                        }
                    },
                }
            },
            "/new": {"post": {}},
        },
        "components": {
            "schemas": {
                "A": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "n": {"type": "integer"},
                        "s": {"enum": ["x"]},
                    },
                }
            }
        },
    }
    changes = {(c.kind, c.detail) for c in diff_openapi(old, new)}
    assert changes == {
        ("operation-added", "operation added"),
        ("operation-removed", "operation removed"),
        ("required-parameter-added", "required query parameter 'q' added"),
        ("response-field-removed", "response field 200 application/json old removed"),
        ("type-narrowed", "response field 200 application/json n: number -> integer"),
        ("type-narrowed", "response field 200 application/json s: fewer enum values"),
        ("operation-removed", "operation removed (x-internal: not part of the public API)"),
    }
    bumps = {c.subject: c.bump for c in diff_openapi(old, new)}
    assert bumps["POST /admin"] == "patch"
    assert bumps["GET /gone"] == "major"


def test_versions() -> None:
    assert bump_version("1.2.3", "major") == "2.0.0"
    assert bump_version("1.2.3", "minor") == "1.3.0"
    assert bump_version("1.2.3", "patch") == "1.2.4"
    assert bump_version("1.2.3", "none") == "1.2.3"
    from spokehub.patterns.diff import Change

    changes = [Change("removed", "a", "token removed", "major")]
    assert check_version("p", "1.2.3", "2.0.0", changes) == "2.0.0"
    with pytest.raises(VersionTooLow) as caught:
        check_version("p", "1.2.3", "1.9.0", changes)
    assert caught.value.reasons == ["major: removed a: token removed"]
