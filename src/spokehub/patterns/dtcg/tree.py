"""Walk a token tree into token definitions: groups vs tokens, names, ``$extends``, inheritance.

This is the structural half of validation (the other half, references and values, is
``resolve.py``). It applies the 2025.10 rules: an object with ``$value`` is a token and may not
also have children; names must not start with ``$`` nor contain ``{``, ``}`` or ``.``; a group's
``$type`` and ``$deprecated`` are inherited; ``$root`` is a token inside its group; ``$extends``
deep-merges another group under this one (local wins, a token replaced whole), must not target a
token, and must not be circular.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spokehub.patterns.dtcg.document import TokenDocument, is_token
from spokehub.patterns.dtcg.types import TYPES
from spokehub.patterns.errors import Diagnostic
from spokehub.patterns.source import Path_

__all__ = ["TokenDef", "flatten", "pointer_of"]

GROUP_PROPS = frozenset({"$type", "$description", "$deprecated", "$extensions", "$extends"})
TOKEN_PROPS = frozenset({"$value", "$ref", "$type", "$description", "$deprecated", "$extensions"})
_BAD_NAME_CHARS = ("{", "}", ".")
INVALID_TYPE = "$invalid"  # a group's $type that was already reported as unknown


@dataclass(slots=True)
class TokenDef:
    """A token as written, with what it inherits from its groups."""

    name: str
    path: tuple[str, ...]
    node: dict[str, Any]
    src_path: tuple[str, ...]  # where the node is written (differs when inherited by $extends)
    group_type: str | None
    group_deprecated: bool | str


def pointer_of(path: Path_) -> str:
    """RFC 6901 pointer of a path."""
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


class _Walker:
    def __init__(self, doc: TokenDocument, out: list[Diagnostic]) -> None:
        self.doc = doc
        self.diags = out
        self.defs: dict[str, TokenDef] = {}
        self.src_of: dict[int, tuple[str, ...]] = {}
        self.memo: dict[tuple[str, ...], dict[str, Any]] = {}
        self.progress: list[tuple[str, ...]] = []
        self.lowered: dict[str, str] = {}

    def error(self, code: str, message: str, path: Path_, severity: str = "error") -> None:
        self.diags.append(
            Diagnostic(code, message, self.doc.position(path), pointer_of(path), severity)  # type: ignore[arg-type]
        )

    # -- $extends ---------------------------------------------------------------------------
    def index(self, node: dict[str, Any], path: tuple[str, ...]) -> bool:
        """Remember where every token node is written; True if any group uses $extends."""
        found = "$extends" in node
        for key, child in node.items():
            if not isinstance(child, dict) or (key.startswith("$") and key != "$root"):
                continue
            if is_token(child):
                self.src_of[id(child)] = (*path, key)
            else:
                found = self.index(child, (*path, key)) or found
        return found

    def target(self, ref: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
        if isinstance(ref, str) and ref.startswith("{") and ref.endswith("}"):
            return tuple(ref[1:-1].split("."))
        if isinstance(ref, str) and ref.startswith("#/"):
            return tuple(p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/"))
        self.error(
            "extends_syntax",
            "$extends must be a reference like '{group}' or '#/group'",
            (*path, "$extends"),
        )
        return None

    def expanded(self, path: tuple[str, ...]) -> dict[str, Any] | None:
        if path in self.memo:
            return self.memo[path]
        node: Any = self.doc.tree
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or is_token(node):
            return node if isinstance(node, dict) else None
        if path in self.progress:
            cycle = [*self.progress[self.progress.index(path) :], path]
            text = " -> ".join(".".join(p) or "(root)" for p in cycle)
            for member in cycle[:-1]:
                self.error("extends_cycle", f"circular $extends: {text}", (*member, "$extends"))
            return None
        self.progress.append(path)
        result: dict[str, Any] = {}
        if "$extends" in node:
            base = self._base(node["$extends"], path)
            if base is not None:
                result = dict(base)
        for key, child in node.items():
            if key == "$extends":
                continue
            if not isinstance(child, dict) or (key.startswith("$") and key != "$root"):
                result[key] = child
                continue
            mine = child if is_token(child) else self.expanded((*path, key))
            old = result.get(key)
            if (
                isinstance(old, dict)
                and isinstance(mine, dict)
                and not is_token(old)
                and not is_token(mine)
            ):
                result[key] = _deep_merge(old, mine)
            else:
                result[key] = mine
        self.progress.pop()
        self.memo[path] = result
        return result

    def _base(self, ref: Any, path: tuple[str, ...]) -> dict[str, Any] | None:
        target = self.target(ref, path)
        if target is None:
            return None
        base = self.expanded(target)
        if base is None and target not in self.progress:
            self.error(
                "extends_missing",
                f"$extends names {ref!r}, which is not a group in this document",
                (*path, "$extends"),
            )
        elif base is not None and is_token(base):
            self.error(
                "extends_token",
                f"$extends must name a group, but {ref!r} is a token",
                (*path, "$extends"),
            )
            return None
        return base

    # -- the walk ---------------------------------------------------------------------------
    def walk(
        self, node: dict[str, Any], path: tuple[str, ...], type_: str | None, deprecated: bool | str
    ) -> None:
        type_, deprecated = self.group_props(node, path, type_, deprecated)
        for key, child in node.items():
            if key.startswith("$"):
                if key == "$root":
                    self.child(child, (*path, key), type_, deprecated)
                elif key not in GROUP_PROPS:
                    self.error(
                        "unknown_property",
                        f"unknown group property {key!r}; names must not start with '$'",
                        (*path, key),
                    )
                continue
            if any(c in key for c in _BAD_NAME_CHARS):
                self.error(
                    "bad_name", f"name {key!r} must not contain '{{', '}}' or '.'", (*path, key)
                )
                continue
            self.child(child, (*path, key), type_, deprecated)

    def group_props(
        self, node: dict[str, Any], path: tuple[str, ...], type_: str | None, deprecated: bool | str
    ) -> tuple[str | None, bool | str]:
        if "$type" in node:
            if node["$type"] in TYPES:
                type_ = node["$type"]
            else:
                self.error(
                    "unknown_type",
                    f"unknown $type {node['$type']!r}; use one of " + ", ".join(TYPES),
                    (*path, "$type"),
                )
                type_ = INVALID_TYPE  # reported once here, not again on every child
        if "$deprecated" in node:
            if isinstance(node["$deprecated"], bool | str):
                deprecated = node["$deprecated"]
            else:
                self.error(
                    "bad_deprecated",
                    "$deprecated must be true, false or a string",
                    (*path, "$deprecated"),
                )
        self.common_props(node, path)
        return type_, deprecated

    def common_props(self, node: dict[str, Any], path: tuple[str, ...]) -> None:
        if "$description" in node and not isinstance(node["$description"], str):
            self.error("bad_description", "$description must be a string", (*path, "$description"))
        if "$extensions" in node and not isinstance(node["$extensions"], dict):
            self.error(
                "bad_extensions",
                "$extensions must be an object keyed by vendor",
                (*path, "$extensions"),
            )

    def child(
        self, child: Any, path: tuple[str, ...], type_: str | None, deprecated: bool | str
    ) -> None:
        if not isinstance(child, dict):
            self.error(
                "not_an_object",
                f"{path[-1]!r} must be an object: a token (with $value) or a group",
                path,
            )
            return
        if not is_token(child):
            self.walk(child, path, type_, deprecated)
            return
        self.token(child, path, type_, deprecated)

    def token(
        self, node: dict[str, Any], path: tuple[str, ...], type_: str | None, deprecated: bool | str
    ) -> None:
        src = self.src_of.get(id(node), path)
        for key in node:
            if key in TOKEN_PROPS:
                continue
            if key.startswith("$"):
                self.error("unknown_property", f"unknown token property {key!r}", (*src, key))
            else:
                self.error(
                    "token_with_children",
                    f"token {'.'.join(path)!r} has $value and "
                    f"a child {key!r}; a token cannot also be a group",
                    (*src, key),
                )
        if "$value" in node and "$ref" in node:
            self.error(
                "value_and_ref", "a token has either $value or $ref, not both", (*src, "$ref")
            )
        if "$type" in node and node["$type"] not in TYPES:
            self.error(
                "unknown_type",
                f"unknown $type {node['$type']!r}; use one of " + ", ".join(TYPES),
                (*src, "$type"),
            )
        if "$deprecated" in node and not isinstance(node["$deprecated"], bool | str):
            self.error(
                "bad_deprecated",
                "$deprecated must be true, false or a string",
                (*src, "$deprecated"),
            )
        self.common_props(node, src)
        name = ".".join(path)
        folded = name.lower()
        if folded in self.lowered and self.lowered[folded] != name:
            self.error(
                "case_collision",
                f"{name!r} differs from {self.lowered[folded]!r} only by case",
                src,
                "warning",
            )
        self.lowered.setdefault(folded, name)
        self.defs[name] = TokenDef(name, path, node, src, type_, deprecated)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if (
            isinstance(old, dict)
            and isinstance(value, dict)
            and not is_token(old)
            and not is_token(value)
        ):
            out[key] = _deep_merge(old, value)
        else:
            out[key] = value
    return out


def flatten(doc: TokenDocument, diagnostics: list[Diagnostic]) -> dict[str, TokenDef]:
    """Every token of ``doc`` in document order; structural problems go to ``diagnostics``."""
    walker = _Walker(doc, diagnostics)
    tree = doc.tree
    if walker.index(tree, ()) or _has_extends(tree):
        tree = walker.expanded(()) or {}
    walker.walk(tree, (), None, False)
    return walker.defs


def _has_extends(node: dict[str, Any]) -> bool:
    for key, child in node.items():
        if key == "$extends":
            return True
        if isinstance(child, dict) and not is_token(child) and _has_extends(child):
            return True
    return False
