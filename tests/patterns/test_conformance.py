"""Conformance: one given/want fixture per DTCG 2025.10 rule, positive and negative.

Each case folder holds ``given.tokens.json`` and ``want.json`` (the rule, every expected
diagnostic with code, message, line and column, and the resolved tokens). The official 2025.10
JSON Schemas (test data, see their README) must accept the positive cases and reject the
structural negative ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.patterns.make_conformance import result
from tests.patterns.support import FIXTURES

CASES = sorted(p for p in (FIXTURES / "conformance").iterdir() if p.is_dir())
SCHEMAS = FIXTURES / "dtcg-schemas-2025.10"

# The official schema cannot see a $type inherited from a group, so it rejects bare keyword
# strings (fontWeight "semi-bold", strokeStyle "dotted") in typed groups: a schema limitation.
SCHEMA_LIMITATIONS = {"all-types"}
# Negative cases the schema itself detects (the others are semantic: references, cycles...).
SCHEMA_REJECTS = {
    "err-names",
    "err-unknown-type",
    "err-value-and-children",
    "err-value-and-ref",
    "err-values",
    "err-ref-outside",
}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Path) -> None:
    want = json.loads((case / "want.json").read_text())
    got = result(case)
    assert got["errors"] == want["errors"], want["rule"]
    assert got["tokens"] == want["tokens"], want["rule"]
    if case.name.startswith("err-"):
        assert want["errors"], f"{case.name} must expect at least one error"
        for error in want["errors"]:
            assert error["line"] > 0
            assert error["column"] > 0
    else:
        assert not [e for e in want["errors"] if e["severity"] == "error"]


def _validator() -> Any:
    import jsonschema_rs

    by_id = {}
    for path in SCHEMAS.rglob("*.json"):
        schema = json.loads(path.read_text())
        by_id[schema["$id"]] = schema
    root = by_id["https://www.designtokens.org/schemas/2025.10/format.json"]
    return jsonschema_rs.validator_for(root, retriever=lambda uri: by_id[uri.split("#")[0]])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_official_schema_agrees(case: Path) -> None:
    if case.name == "err-malformed-json" or case.name in SCHEMA_LIMITATIONS:
        return
    valid = _validator().is_valid(json.loads((case / "given.tokens.json").read_text()))
    if case.name.startswith("err-"):
        assert valid is (case.name not in SCHEMA_REJECTS)
    else:
        assert valid


def test_every_rule_has_a_case() -> None:
    codes = {e["code"] for c in CASES for e in json.loads((c / "want.json").read_text())["errors"]}
    assert {
        "json_syntax",
        "token_with_children",
        "unknown_type",
        "no_type",
        "missing_reference",
        "ref_outside",
        "reference_cycle",
        "extends_cycle",
        "extends_token",
        "bad_name",
        "unknown_property",
        "value_and_ref",
        "invalid_value",
        "type_mismatch",
    } <= codes


def test_cycle_reported_for_every_member() -> None:
    want = json.loads((FIXTURES / "conformance" / "err-cycle" / "want.json").read_text())
    cycle = [e for e in want["errors"] if e["code"] == "reference_cycle"]
    assert {e["pointer"] for e in cycle} == {"#/n/a/$value", "#/n/b/$value", "#/n/c/$value"}
