"""Regenerate the conformance fixtures' ``want.json`` from their ``given`` files.

Run after adding a case (``python tests/patterns/make_conformance.py``), then READ the new
``want.json``: it becomes the expected result, so it must be checked against the rule the case
names before it is committed. The test (``test_conformance.py``) never regenerates anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent / "fixtures" / "patterns" / "conformance"


def result(case: Path) -> dict[str, object]:
    from spokehub.patterns.dtcg.document import TokenDocument
    from spokehub.patterns.dtcg.resolve import resolve_document
    from spokehub.patterns.source import SourceSyntaxError, load_json

    given = case / "given.tokens.json"
    try:
        doc = load_json(given.read_text(encoding="utf-8"), "given.tokens.json")
    except SourceSyntaxError as exc:
        return {"errors": [_diag(exc.diagnostic)], "tokens": {}}
    tokens = resolve_document(TokenDocument.from_source(doc))
    return {
        "errors": [_diag(d) for d in tokens.diagnostics],
        "tokens": {
            name: {
                "type": t.type,
                "value": t.value,
                "deprecated": t.deprecated,
                **({"extensions": t.extensions} if t.extensions else {}),
            }
            for name, t in tokens.tokens.items()
        },
    }


def _diag(d: object) -> dict[str, object]:
    from spokehub.patterns.errors import Diagnostic

    assert isinstance(d, Diagnostic)
    return {
        "code": d.code,
        "severity": d.severity,
        "message": d.message,
        "line": d.position.line,
        "column": d.position.column,
        "pointer": d.pointer,
    }


def main() -> None:
    for case in sorted(p for p in ROOT.iterdir() if p.is_dir()):
        want = case / "want.json"
        rule = json.loads(want.read_text())["rule"] if want.exists() else "TODO: name the rule"
        out = {"rule": rule, **result(case)}
        want.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(case.name, len(out["errors"]), "error(s)")  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent / "src"))
    main()
