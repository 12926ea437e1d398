"""Typed diffs between two states of a pattern, and the SemVer bump they require.

Tokens: added, removed, renamed (a removed and an added token with the same type and written
value, paired one to one), type changed, value changed, newly deprecated. OpenAPI: operation
added or removed, required parameter added, response field removed, type narrowed (fewer
types, ``number`` to ``integer``, fewer enum values). Default bumps: removal, rename and type
change are major; addition and deprecation minor; a value change patch. A manifest's
``versioning.rules`` override the bump per token group (the longest matching group wins).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from spokehub.patterns.dtcg.resolve import TokenSet
from spokehub.patterns.errors import VersionTooLow
from spokehub.patterns.manifest import BumpRule
from spokehub.patterns.openapi import operations

__all__ = [
    "BUMPS",
    "Change",
    "bump_version",
    "check_version",
    "diff_openapi",
    "diff_tokens",
    "parse_semver",
    "required_bump",
]

BUMPS = ("none", "patch", "minor", "major")
DEFAULT_BUMP = {
    "added": "minor",
    "removed": "major",
    "renamed": "major",
    "type-changed": "major",
    "value-changed": "patch",
    "deprecated": "minor",
    "operation-added": "minor",
    "operation-removed": "major",
    "required-parameter-added": "major",
    "response-field-removed": "major",
    "type-narrowed": "major",
}


@dataclass(frozen=True, slots=True)
class Change:
    """One typed change; ``bump`` is the smallest version bump it requires."""

    kind: str
    subject: str
    detail: str
    bump: str
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        return f"{self.bump}: {self.kind} {self.subject}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "detail": self.detail,
            "bump": self.bump,
            "before": self.before,
            "after": self.after,
        }


def _bump(kind: str, name: str, rules: tuple[BumpRule, ...]) -> str:
    best: BumpRule | None = None
    for rule in rules:
        if (
            rule.change == kind
            and (name == rule.group or name.startswith(rule.group + "."))
            and (best is None or len(rule.group) > len(best.group))
        ):
            best = rule
    return best.bump if best else DEFAULT_BUMP[kind]


def diff_tokens(old: TokenSet, new: TokenSet, rules: tuple[BumpRule, ...] = ()) -> list[Change]:
    """Typed changes from ``old`` to ``new`` (one permutation each)."""
    before, after = old.tokens, new.tokens
    removed = [n for n in before if n not in after]
    added = [n for n in after if n not in before]
    out: list[Change] = []
    by_shape: dict[str, list[str]] = {}
    for name in added:
        t = after[name]
        by_shape.setdefault(repr((t.type, t.raw)), []).append(name)
    renamed: set[str] = set()
    for name in removed:
        t = before[name]
        candidates = by_shape.get(repr((t.type, t.raw)), [])
        if candidates:
            target = candidates.pop(0)
            renamed.add(target)
            out.append(
                Change(
                    "renamed",
                    name,
                    f"renamed to {target}",
                    _bump("renamed", name, rules),
                    name,
                    target,
                )
            )
        else:
            out.append(
                Change(
                    "removed", name, "token removed", _bump("removed", name, rules), t.value, None
                )
            )
    for name in added:
        if name not in renamed:
            out.append(
                Change(
                    "added",
                    name,
                    "token added",
                    _bump("added", name, rules),
                    None,
                    after[name].value,
                )
            )
    for name, old_t in before.items():
        new_t = after.get(name)
        if new_t is None:
            continue
        if old_t.type != new_t.type:
            out.append(
                Change(
                    "type-changed",
                    name,
                    f"type {old_t.type} -> {new_t.type}",
                    _bump("type-changed", name, rules),
                    old_t.type,
                    new_t.type,
                )
            )
        elif old_t.value != new_t.value:
            out.append(
                Change(
                    "value-changed",
                    name,
                    "value changed",
                    _bump("value-changed", name, rules),
                    old_t.value,
                    new_t.value,
                )
            )
        if old_t.deprecated is False and new_t.deprecated is not False:
            why = new_t.deprecated if isinstance(new_t.deprecated, str) else "deprecated"
            out.append(
                Change(
                    "deprecated",
                    name,
                    f"newly deprecated ({why})",
                    _bump("deprecated", name, rules),
                    False,
                    new_t.deprecated,
                )
            )
    return out


def _schema(spec: dict[str, Any], schema: Any) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        schema = ((spec.get("components") or {}).get("schemas") or {}).get(name, {})
        seen += 1
    return schema if isinstance(schema, dict) else {}


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if kind else set()


def _narrowed(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    a, b = _types(old), _types(new)
    if a and b and b != a:
        if a == {"number"} and b == {"integer"}:
            return "number -> integer"
        return f"{'/'.join(sorted(a))} -> {'/'.join(sorted(b))}"
    if "enum" in new and (
        set(map(repr, old.get("enum", []))) - set(map(repr, new["enum"])) or "enum" not in old
    ):
        return "fewer enum values"
    return None


def _fields(spec: dict[str, Any], op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for status, resp in (op.get("responses") or {}).items():
        for media, content in ((resp or {}).get("content") or {}).items():
            schema = _schema(spec, content.get("schema"))
            if schema.get("type") == "array":
                schema = _schema(spec, schema.get("items"))
            for field, prop in (schema.get("properties") or {}).items():
                out[f"{status} {media} {field}"] = _schema(spec, prop)
    return out


def diff_openapi(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Typed changes between two OpenAPI documents.

    Changes to ``x-internal`` operations are listed but need only a patch: they are not part of
    the public contract the version describes.
    """
    before = {(m, p): op for p, m, op in operations(old, internal=True)}
    after = {(m, p): op for p, m, op in operations(new, internal=True)}
    out: list[Change] = []
    for key in after.keys() - before.keys():
        out.append(
            Change(
                "operation-added",
                f"{key[0].upper()} {key[1]}",
                "operation added",
                DEFAULT_BUMP["operation-added"],
            )
        )
    for key in before.keys() - after.keys():
        out.append(
            Change(
                "operation-removed",
                f"{key[0].upper()} {key[1]}",
                "operation removed",
                DEFAULT_BUMP["operation-removed"],
            )
        )
    for key in sorted(before.keys() & after.keys()):
        subject = f"{key[0].upper()} {key[1]}"
        old_op, new_op = before[key], after[key]
        old_req = {
            (p.get("in"), p.get("name"))
            for p in old_op.get("parameters") or []
            if isinstance(p, dict) and p.get("required")
        }
        for p in new_op.get("parameters") or []:
            if (
                isinstance(p, dict)
                and p.get("required")
                and (p.get("in"), p.get("name")) not in old_req
            ):
                out.append(
                    Change(
                        "required-parameter-added",
                        subject,
                        f"required {p.get('in')} parameter {p.get('name')!r} added",
                        DEFAULT_BUMP["required-parameter-added"],
                    )
                )
        old_fields, new_fields = _fields(old, old_op), _fields(new, new_op)
        for field in sorted(old_fields.keys() - new_fields.keys()):
            out.append(
                Change(
                    "response-field-removed",
                    subject,
                    f"response field {field} removed",
                    DEFAULT_BUMP["response-field-removed"],
                )
            )
        for field in sorted(old_fields.keys() & new_fields.keys()):
            how = _narrowed(old_fields[field], new_fields[field])
            if how:
                out.append(
                    Change(
                        "type-narrowed",
                        subject,
                        f"response field {field}: {how}",
                        DEFAULT_BUMP["type-narrowed"],
                    )
                )
    hidden = _internal_subjects(old) | _internal_subjects(new)
    out = [
        replace(c, bump="patch", detail=f"{c.detail} (x-internal: not part of the public API)")
        if c.subject in hidden
        else c
        for c in out
    ]
    return sorted(out, key=lambda c: (c.kind, c.subject, c.detail))


def _internal_subjects(spec: dict[str, Any]) -> set[str]:
    public = {(m, p) for p, m, _ in operations(spec, internal=False)}
    return {
        f"{m.upper()} {p}" for p, m, _ in operations(spec, internal=True) if (m, p) not in public
    }


def required_bump(changes: list[Change]) -> str:
    """The largest bump any change requires (``none`` for no changes)."""
    return max((c.bump for c in changes), key=BUMPS.index, default="none")


def parse_semver(version: str) -> tuple[int, int, int]:
    core = version.split("+", 1)[0].split("-", 1)[0]
    major, minor, patch = (int(x) for x in core.split("."))
    return major, minor, patch


def bump_version(version: str, bump: str) -> str:
    """The smallest version above ``version`` that satisfies ``bump``."""
    major, minor, patch = parse_semver(version)
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    if bump == "patch":
        return f"{major}.{minor}.{patch + 1}"
    return version


def check_version(pattern_id: str, previous: str, declared: str, changes: list[Change]) -> str:
    """The required version; raises VersionTooLow (with reasons) when ``declared`` is lower."""
    bump = required_bump(changes)
    need = bump_version(previous, bump)
    if parse_semver(declared) < parse_semver(need):
        reasons = [str(c) for c in changes if c.bump == bump]
        raise VersionTooLow(
            f"pattern {pattern_id!r} declares {declared}, but its changes since "
            f"{previous} require at least {need} ({bump})",
            reasons,
        )
    return need
