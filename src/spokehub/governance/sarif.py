"""SARIF 2.1.0 for policy violations and policy-file problems (code-scanning UIs read it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spokehub.governance.decisions import PolicyDecision
from spokehub.governance.errors import Problem

__all__ = ["sarif_log"]

_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"deny": "error", "warn": "warning", "allow": "note"}


def _location(where: str) -> dict[str, Any]:
    file, _, line = where.rpartition(":")
    if not file or not line.isdigit():
        file, line = where, "1"
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": file},
            "region": {"startLine": max(1, int(line))},
        }
    }


def sarif_log(
    decisions: Sequence[tuple[str, PolicyDecision]] = (),
    problems: Sequence[Problem] = (),
) -> dict[str, Any]:
    """One SARIF run: a result per violation (labelled by its case) and per file problem."""
    results: list[dict[str, Any]] = []
    rules: dict[str, dict[str, Any]] = {}
    for label, decision in decisions:
        for r in decision.results:
            level = _LEVEL[r.effect]
            for v in r.violations:
                rules.setdefault(r.policy, {"id": r.policy, "name": r.policy})
                results.append(
                    {
                        "ruleId": r.policy,
                        "level": level,
                        "message": {
                            "text": f"{label}: {v.message} (binding {r.binding}, "
                            f"reason {v.reason}, outcome {r.outcome})"
                        },
                        "locations": [_location(v.expression)],
                        "properties": {
                            "binding": r.binding,
                            "reason": v.reason,
                            "outcome": r.outcome,
                            "hook": decision.hook,
                        },
                    }
                )
    for p in problems:
        rules.setdefault("policy-invalid", {"id": "policy-invalid", "name": "policy-invalid"})
        results.append(
            {
                "ruleId": "policy-invalid",
                "level": "error",
                "message": {"text": p.message},
                "locations": [_location(f"{p.file}:{p.line}")],
            }
        )
    return {
        "$schema": _SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "spokehub-policy",
                        "informationUri": "https://spokehub.dev/docs/governance",
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }
