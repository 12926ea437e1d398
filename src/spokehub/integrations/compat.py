"""``contracts diff``: is a new contract version compatible with the old one?

A change is **breaking** when a document valid under the old shape may be invalid under the
new one, or a field the old shape declared is gone (a consumer may rely on it): a removed
field, a new required field, a field that became required, a narrowed type, a removed enum
value, a tightened limit (``maxLength``, ``minimum``, ...), a changed pattern or format,
additional properties no longer allowed. Added optional fields, added enum values, widened
types and loosened limits are **compatible**. JSON Schemas are compared after resolving
their local ``$ref``s (pydantic models are compared through their JSON Schema).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from spokehub.integrations.contracts import Contract

Schema = dict[str, Any]

# Limits that reject more documents when they go down / when they go up.
_UPPER = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
_LOWER = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
_MAX_DEPTH = 64  # recursive schemas ($ref cycles) stop here


@dataclass(frozen=True, slots=True)
class Change:
    """One difference: where (a JSON path), what kind, and whether it breaks consumers."""

    path: str
    kind: str
    breaking: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "breaking": self.breaking,
            "detail": self.detail,
        }


def diff_contracts(old: Contract, new: Contract) -> list[Change]:
    """Every change from ``old`` to ``new``, request side then response side."""
    changes: list[Change] = []
    for side in ("request", "response"):
        before, after = old.schema(side), new.schema(side)
        if before is None and after is None:
            continue
        if before is None:
            changes.append(Change(side, "shape added", True, f"the {side} now has a contract"))
            continue
        if after is None:
            changes.append(Change(side, "shape removed", False, f"the {side} is unchecked now"))
            continue
        changes += diff_schemas(before, after, prefix=f"{side}:$")
    return changes


def diff_schemas(old: Schema, new: Schema, *, prefix: str = "$") -> list[Change]:
    """Changes between two JSON Schemas."""
    walker = _Walker(old, new)
    walker.walk(old, new, prefix, 0)
    return walker.changes


def is_breaking(changes: list[Change]) -> bool:
    return any(c.breaking for c in changes)


class _Walker:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.roots = (old_root, new_root)
        self.changes: list[Change] = []

    def add(self, path: str, kind: str, breaking: bool, detail: str) -> None:
        self.changes.append(Change(path, kind, breaking, detail))

    def walk(self, old: Any, new: Any, path: str, depth: int) -> None:
        o, n = _resolve(old, self.roots[0]), _resolve(new, self.roots[1])
        if depth > _MAX_DEPTH or not isinstance(o, dict) or not isinstance(n, dict):
            if o != n:
                self.add(path, "schema changed", True, "a boolean or recursive schema changed")
            return
        self._types(o, n, path)
        self._enum(o, n, path)
        self._limits(o, n, path)
        self._exact(o, n, path)
        self._properties(o, n, path, depth)
        if "items" in o or "items" in n:
            self.walk(o.get("items", {}), n.get("items", {}), f"{path}[]", depth + 1)

    def _types(self, o: Schema, n: Schema, path: str) -> None:
        before, after = _types(o), _types(n)
        if before == after:
            return
        if after is None:
            self.add(path, "type widened", False, f"{sorted(before or [])} -> any")
            return
        lost = (before or {"any"}) - after
        if "integer" in lost and "number" in after:
            lost.discard("integer")
        if lost:
            self.add(path, "type narrowed", True, f"{sorted(before or ['any'])} -> {sorted(after)}")
        else:
            self.add(path, "type widened", False, f"{sorted(before or [])} -> {sorted(after)}")

    def _enum(self, o: Schema, n: Schema, path: str) -> None:
        if "enum" not in n:
            if "enum" in o:
                self.add(path, "enum removed", False, "any value is accepted now")
            return
        if "enum" not in o:
            self.add(path, "enum added", True, f"only {n['enum']} are accepted now")
            return
        old_values = [json.dumps(v, sort_keys=True) for v in o["enum"]]
        new_values = [json.dumps(v, sort_keys=True) for v in n["enum"]]
        removed = [v for v in old_values if v not in new_values]
        added = [v for v in new_values if v not in old_values]
        if removed:
            self.add(path, "enum value removed", True, ", ".join(removed))
        if added:
            self.add(path, "enum value added", False, ", ".join(added))

    def _limits(self, o: Schema, n: Schema, path: str) -> None:
        for key in (*_UPPER, *_LOWER):
            before, after = o.get(key), n.get(key)
            if before == after:
                continue
            upper = key in _UPPER
            tighter = after is not None and (
                before is None or (after < before if upper else after > before)
            )
            kind = "limit tightened" if tighter else "limit loosened"
            self.add(path, kind, tighter, f"{key}: {before} -> {after}")

    def _exact(self, o: Schema, n: Schema, path: str) -> None:
        for key in ("pattern", "format", "const", "anyOf", "oneOf", "allOf"):
            if key in n and o.get(key) != n.get(key):
                self.add(path, f"{key} changed", True, f"{o.get(key)!r} -> {n.get(key)!r}")
            elif key in o and key not in n:
                self.add(path, f"{key} removed", False, f"{o[key]!r} no longer checked")
        if (
            o.get("additionalProperties", True) is not False
            and n.get("additionalProperties", True) is False
        ):
            self.add(path, "additional properties refused", True, "unknown fields now rejected")

    def _properties(self, o: Schema, n: Schema, path: str, depth: int) -> None:
        before, after = o.get("properties", {}), n.get("properties", {})
        req_before, req_after = set(o.get("required", [])), set(n.get("required", []))
        for name in before:
            where = f"{path}.{name}"
            if name not in after:
                self.add(where, "field removed", True, f"{name!r} is gone")
                continue
            if name in req_after and name not in req_before:
                self.add(where, "field became required", True, f"{name!r} must now be sent")
            elif name in req_before and name not in req_after:
                self.add(where, "field became optional", False, f"{name!r} may be left out")
            self.walk(before[name], after[name], where, depth + 1)
        for name in after:
            if name in before:
                continue
            required = name in req_after
            kind = "new required field" if required else "field added"
            self.add(f"{path}.{name}", kind, required, f"{name!r} is new")


def _types(schema: Schema) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None
    return {declared} if isinstance(declared, str) else set(declared)


def _resolve(schema: Any, root: Schema) -> Any:
    """Follow local ``$ref``s (``#/$defs/Name``, ``#/definitions/Name``)."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 32:
        ref: str = schema["$ref"]
        if not ref.startswith("#/"):
            return schema
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
        schema = target
        seen += 1
    return schema
