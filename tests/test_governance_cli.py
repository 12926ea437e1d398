"""``spokehub policy check|test|eval``: exit codes, problems with file and line, SARIF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spokehub.cli.app import app

runner = CliRunner()

POLICY = """apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: licences}
spec:
  validations:
    - expression: object.license in params.allowed
      messageExpression: "'licence ' + object.license + ' is not allowed'"
      reason: Forbidden
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: licences-prod}
spec:
  policyName: licences
  match: {hooks: [gate], names: [release]}
  actions: [Deny]
  params: {allowed: [MIT, Apache-2.0]}
"""

CASES = """- {name: mit ok, subject: release, object: {license: MIT}, expect: allow}
- {name: gpl denied, subject: release, object: {license: GPL-3.0}, expect: deny}
"""


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    d = tmp_path / "policies"
    d.mkdir()
    (d / "licences.yaml").write_text(POLICY)
    return d


def test_check_ok_and_json(policy_dir: Path) -> None:
    result = runner.invoke(app, ["policy", "check", str(policy_dir)])
    assert result.exit_code == 0, result.output
    assert "1 policies, 1 bindings" in result.output
    result = runner.invoke(app, ["policy", "check", str(policy_dir), "--format", "json"])
    assert json.loads(result.output)["policies"] == ["licences"]


def test_check_refuses_with_file_and_line_and_sarif(policy_dir: Path) -> None:
    (policy_dir / "licences.yaml").write_text(
        POLICY.replace("object.license in", "objet.license in")
    )
    result = runner.invoke(app, ["policy", "check", str(policy_dir)])
    assert result.exit_code == 2
    assert f"{policy_dir / 'licences.yaml'}:6:" in result.output
    assert "objet" in result.output
    result = runner.invoke(app, ["policy", "check", str(policy_dir), "--format", "sarif"])
    assert result.exit_code == 2
    sarif = json.loads(result.stdout)
    (found,) = sarif["runs"][0]["results"]
    assert found["locations"][0]["physicalLocation"]["region"]["startLine"] == 6
    result = runner.invoke(app, ["policy", "check", str(policy_dir / "nope")])
    assert result.exit_code == 2
    assert "not a directory" in result.output


def test_cases_pass_and_mismatch(policy_dir: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES)
    result = runner.invoke(app, ["policy", "test", str(policy_dir), "--cases", str(cases)])
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output
    cases.write_text(CASES.replace("expect: deny", "expect: allow"))
    result = runner.invoke(app, ["policy", "test", str(policy_dir), "--cases", str(cases)])
    assert result.exit_code == 1
    assert "FAIL gpl denied: expected allow, got deny" in result.output
    result = runner.invoke(
        app, ["policy", "test", str(policy_dir), "--cases", str(cases), "--format", "sarif"]
    )
    results = json.loads(result.stdout)["runs"][0]["results"]
    assert [r["level"] for r in results] == ["error"]
    assert "licence GPL-3.0 is not allowed" in results[0]["message"]["text"]
    cases.write_text("- {name: x}\n")
    result = runner.invoke(app, ["policy", "test", str(policy_dir), "--cases", str(cases)])
    assert result.exit_code == 2
    assert "expect" in result.output


@pytest.mark.parametrize("engine", ["cel-expr-python", "common-expression-language"])
def test_eval(policy_dir: Path, tmp_path: Path, engine: str) -> None:
    base = ["policy", "eval", str(policy_dir), "--name", "release", "--engine", engine]
    result = runner.invoke(app, [*base, "--input", '{"license": "MIT"}'])
    assert result.exit_code == 0, result.output
    assert "decision: allow" in result.output
    doc = tmp_path / "doc.json"
    doc.write_text('{"license": "BSD"}')
    result = runner.invoke(app, [*base, "--input", f"@{doc}", "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["decision"] == "deny"
    result = runner.invoke(app, [*base, "--input", "{nope"])
    assert result.exit_code == 2
    result = runner.invoke(app, [*base, "--input", "@/does/not/exist"])
    assert result.exit_code == 2
    result = runner.invoke(app, [*base[:-1], "no-such-engine", "--input", "{}"])
    assert result.exit_code == 2
    assert "unknown policy engine" in result.output


@pytest.mark.parametrize("engine", ["cel-expr-python", "common-expression-language"])
def test_documented_examples_pass_their_cases(engine: str) -> None:
    """examples/policies (licence allow-list, freeze window, blast radius) as docs show them."""
    root = Path(__file__).resolve().parents[1] / "examples"
    cases = root / "policy-cases.yaml"
    args = ["policy", "test", str(root / "policies"), "--cases", str(cases), "--engine", engine]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "11 passed, 0 failed" in result.output


def test_a_variable_must_be_json() -> None:
    from spokehub.governance import PolicyLoadError, load_policy_texts

    text = POLICY.replace(
        "  validations:",
        "  variables:\n    - name: now\n"
        "      expression: timestamp('2026-01-01T00:00:00Z')\n  validations:",
    )
    with pytest.raises(PolicyLoadError, match="variable 'now' gives a timestamp"):
        load_policy_texts([("p.yaml", text)], engine="cel-expr-python")
