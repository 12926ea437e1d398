"""Policy test cases: sample inputs with the decision each must get (``spokehub policy test``).

A cases file is YAML: a list of mappings with ``name``, ``hook`` (default ``gate``),
optional ``workflow``/``subject``/``actor``/``labels``/``now`` (RFC 3339), the ``object`` to
decide, and
``expect`` (``allow``, ``warn`` or ``deny``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spokehub.governance.decisions import PolicyDecision, Subject, evaluate
from spokehub.governance.errors import PolicyLoadError, Problem
from spokehub.governance.policyset import PolicySet

__all__ = ["Case", "CaseResult", "load_cases", "run_cases"]

_DECISIONS = ("allow", "warn", "deny")


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    subject: Subject
    document: Any
    expect: str
    now: float | None = None


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    decision: PolicyDecision

    @property
    def ok(self) -> bool:
        return self.decision.decision == self.case.expect


def _moment(value: Any, file: str, index: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise PolicyLoadError(
            [Problem(file, 0, f"case #{index + 1}: now must be an RFC 3339 time, got {value!r}")]
        ) from None


def load_cases(path: str | Path) -> list[Case]:
    """Read a cases file; a malformed one raises ``PolicyLoadError`` naming the case."""
    import yaml

    file = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PolicyLoadError(
            [Problem(file, mark.line + 1 if mark else 0, f"not valid YAML: {exc}")]
        ) from None
    if not isinstance(raw, list) or not raw:
        raise PolicyLoadError([Problem(file, 1, "a cases file is a non-empty YAML list")])
    cases = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or item.get("expect") not in _DECISIONS:
            raise PolicyLoadError(
                [Problem(file, 0, f"case #{i + 1} needs expect: one of {', '.join(_DECISIONS)}")]
            )
        subject = Subject(
            hook=str(item.get("hook", "gate")),
            workflow=item.get("workflow"),
            name=item.get("subject"),
            actor=item.get("actor"),
            labels=tuple(str(label) for label in item.get("labels", ()) or ()),
        )
        cases.append(
            Case(
                name=str(item.get("name", f"case {i + 1}")),
                subject=subject,
                document=item.get("object"),
                expect=item["expect"],
                now=_moment(item.get("now"), file, i),
            )
        )
    return cases


def run_cases(policies: PolicySet, cases: list[Case], *, now: float) -> list[CaseResult]:
    return [
        CaseResult(case, evaluate(policies, case.subject, case.document, now=case.now or now))
        for case in cases
    ]
