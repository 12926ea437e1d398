"""Grounding checks on a generated section: schema, references, no internals, code parses."""

from __future__ import annotations

import ast
import json
import re
import shlex
from functools import cache
from typing import Any

from spokehub.patterns.openapi import operations

__all__ = ["SECTION_SCHEMA", "check_section"]

SECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "body", "codeSamples", "references"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "body": {"type": "string", "minLength": 1},
        "codeSamples": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["language", "code"],
                "additionalProperties": False,
                "properties": {
                    "language": {"enum": ["bash", "python", "json", "yaml"]},
                    "code": {"type": "string"},
                },
            },
        },
        "references": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["method", "path"],
                "additionalProperties": False,
                "properties": {"method": {"type": "string"}, "path": {"type": "string"}},
            },
        },
    },
}

_MENTION = re.compile(r"\b(GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS|TRACE)\s+(/[^\s`'\"),]*)")


@cache
def _validator() -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for(SECTION_SCHEMA)


def _internal_names(spec: dict[str, Any]) -> set[str]:
    public = {(m, p) for p, m, _ in operations(spec, internal=False)}
    names: set[str] = set()
    for path, method, op in operations(spec, internal=True):
        if (method, path) not in public:
            names.add(path)
            if op.get("operationId"):
                names.add(str(op["operationId"]))
    for name, schema in ((spec.get("components") or {}).get("schemas") or {}).items():
        if isinstance(schema, dict) and schema.get("x-internal") is True:
            names.add(name)
    return names


def _parses(language: str, code: str) -> str | None:
    try:
        if language == "python":
            ast.parse(code)
        elif language == "json":
            json.loads(code)
        elif language == "yaml":
            import yaml

            yaml.safe_load(code)
        else:
            words = shlex.split(code.replace("\\\n", " "))
            if not words:
                return "empty shell sample"
    except (SyntaxError, ValueError) as exc:
        return f"{language} sample does not parse: {exc}"
    except Exception as exc:
        return f"{language} sample does not parse: {exc}"
    return None


def _matches(path: str, template: str) -> bool:
    pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path.split("?", 1)[0]) is not None


def check_section(output: Any, spec: dict[str, Any]) -> list[str]:
    """Every grounding problem of a generated section (empty when it may be approved)."""
    problems = [f"schema: {e.message}" for e in _validator().iter_errors(output)]
    if problems:
        return problems
    public = [(m.upper(), p) for p, m, _ in operations(spec, internal=False)]
    for ref in output["references"]:
        if (ref["method"].upper(), ref["path"]) not in public:
            problems.append(f"reference {ref['method']} {ref['path']} is not a public operation")
    text = "\n".join([output["title"], output["body"], *(s["code"] for s in output["codeSamples"])])
    for method, path in _MENTION.findall(text):
        if not any(m == method and _matches(path, p) for m, p in public):
            problems.append(f"mentions {method} {path}, which is not a public operation")
    for name in sorted(_internal_names(spec)):
        if name in text:
            problems.append(f"mentions {name!r}, which is x-internal")
    for sample in output["codeSamples"]:
        problem = _parses(sample["language"], sample["code"])
        if problem:
            problems.append(problem)
    return problems
