"""References and values: follow aliases and JSON Pointers to concrete values, find types.

A curly-brace alias ``"{group.token}"`` names a whole token; a ``{"$ref": "#/a/b/$value/..."}``
JSON Pointer may point anywhere in the document, including one property of a composite value
(the pointer passes through the referenced token's *resolved* value). A token written with
``$ref`` instead of ``$value`` uses the pointer as its value. Chains are followed to a concrete
value; a cycle is an error reported on every token in it. The type of a token is its own
``$type``, else the type of the token its value references, else its nearest group's ``$type``;
it is never guessed from the value. Then each value is checked against its type's shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from spokehub.patterns.dtcg.document import Contribution, TokenDocument, is_token
from spokehub.patterns.dtcg.tree import INVALID_TYPE, TokenDef, flatten, pointer_of
from spokehub.patterns.dtcg.types import SLOT_TYPES, TYPES, check_value
from spokehub.patterns.errors import Diagnostic, Position

__all__ = ["ALIAS", "Token", "TokenSet", "resolve_document"]

ALIAS = re.compile(r"^\{([^{}]+)\}$")
_FAILED = object()


@dataclass(slots=True)
class Token:
    """A resolved token."""

    name: str
    path: tuple[str, ...]
    type: str | None
    raw: Any  # the value as written (aliases kept); ``{"$ref": ...}`` for a $ref token
    value: Any  # the concrete value, references followed
    position: Position
    description: str | None = None
    deprecated: bool | str = False
    extensions: dict[str, Any] | None = None
    alias_of: str | None = None  # the token a whole-value alias names
    refs: tuple[str, ...] = ()  # every token this one's value depends on directly
    fingerprint: str | None = None  # set by the transforms on first use

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "value": self.value}
        if self.raw != self.value:
            out["raw"] = self.raw
        if self.description is not None:
            out["description"] = self.description
        if self.deprecated is not False:
            out["deprecated"] = self.deprecated
        if self.extensions:
            out["extensions"] = self.extensions
        out["source"] = {
            "file": self.position.file,
            "line": self.position.line,
            "column": self.position.column,
        }
        return out


@dataclass(slots=True)
class TokenSet:
    """Every token of one resolved document (one permutation of a resolver)."""

    tokens: dict[str, Token] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    document: TokenDocument = field(default_factory=TokenDocument)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def history(self, name: str) -> list[Contribution]:
        token = self.tokens.get(name)
        return list(self.document.history.get(token.path if token else (), []))


class _Resolver:
    def __init__(
        self, doc: TokenDocument, defs: dict[str, TokenDef], diags: list[Diagnostic]
    ) -> None:
        self.doc = doc
        self.defs = defs
        self.diags = diags
        self.values: dict[str, Any] = {}
        self.types: dict[str, str | None] = {}
        self.refs: dict[str, list[str]] = {}
        self.stack: list[str] = []
        self.reported: set[str] = set()

    def error(
        self, code: str, message: str, path: tuple[str | int, ...], name: str | None = None
    ) -> None:
        if name is not None:
            self.reported.add(name)
        self.diags.append(Diagnostic(code, message, self.doc.position(path), pointer_of(path)))

    def resolve(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        definition = self.defs[name]
        if name in self.stack:
            cycle = [*self.stack[self.stack.index(name) :], name]
            text = " -> ".join(cycle)
            for member in cycle[:-1]:
                self.values[member] = _FAILED
                self.types.setdefault(member, None)
                src = self.defs[member].src_path
                self.error("reference_cycle", f"reference cycle: {text}", (*src, "$value"), member)
            return _FAILED
        self.stack.append(name)
        self.refs[name] = []
        node = definition.node
        if "$value" in node:
            value = self.walk(node["$value"], (*definition.src_path, "$value"), name)
        else:
            value = self.pointer(node.get("$ref"), (*definition.src_path, "$ref"), name)
        self.stack.pop()
        if name in self.values:  # it was part of a cycle found below it
            return self.values[name]
        self.values[name] = value
        self.types[name] = self.type_of(definition)
        return value

    def type_of(self, definition: TokenDef) -> str | None:
        node = definition.node
        own = node.get("$type")
        referenced = self.referenced_type(node)
        if own is not None and own not in TYPES:
            self.reported.add(definition.name)  # the walk reported the unknown $type
            return None
        if isinstance(own, str):
            if referenced and referenced != own:
                self.error(
                    "type_mismatch",
                    f"$type is {own!r} but the referenced token is a {referenced}",
                    (*definition.src_path, "$type"),
                    definition.name,
                )
            return own
        if referenced:
            return referenced
        if definition.group_type == INVALID_TYPE:
            self.reported.add(definition.name)  # its group's $type error explains it
            return None
        return definition.group_type

    def referenced_type(self, node: dict[str, Any]) -> str | None:
        raw = node.get("$value")
        target: str | None = None
        if isinstance(raw, str) and (m := ALIAS.match(raw)):
            target = m.group(1)
        elif "$ref" in node or (isinstance(raw, dict) and set(raw) == {"$ref"}):
            ref = node["$ref"] if "$ref" in node else raw["$ref"]  # type: ignore[index]
            target = self.pointer_token(ref)
        return self.types.get(target) if target in self.defs else None

    def pointer_token(self, ref: Any) -> str | None:
        """The token a pointer names whole (``#/a/b`` or ``#/a/b/$value``), if it does."""
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return None
        parts = _unescape(ref)
        if parts and parts[-1] == "$value":
            parts = parts[:-1]
        name = ".".join(parts)
        return name if name in self.defs else None

    def walk(self, raw: Any, at: tuple[str | int, ...], owner: str) -> Any:
        if isinstance(raw, str):
            m = ALIAS.match(raw)
            return self.alias(m.group(1), at, owner) if m else raw
        if isinstance(raw, dict):
            if set(raw) == {"$ref"}:
                return self.pointer(raw["$ref"], at, owner)
            return {k: self.walk(v, (*at, k), owner) for k, v in raw.items()}
        if isinstance(raw, list):
            return [self.walk(v, (*at, i), owner) for i, v in enumerate(raw)]
        return raw

    def alias(self, target: str, at: tuple[str | int, ...], owner: str) -> Any:
        if target not in self.defs:
            hint = _group_hint(self.doc.tree, target)
            self.error(
                "missing_reference", f"{owner}: {{{target}}} does not name a token{hint}", at, owner
            )
            return _FAILED
        self.refs[owner].append(target)
        return self.checked(self.resolve(target), target, at, owner)

    def checked(self, value: Any, target: str, at: tuple[str | int, ...], owner: str) -> Any:
        if value is _FAILED and owner not in self.reported and target not in self.stack:
            self.error(
                "unresolved_reference",
                f"{owner}: {target!r} cannot be resolved (see its own error)",
                at,
                owner,
            )
        return value

    def pointer(self, ref: Any, at: tuple[str | int, ...], owner: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            self.error(
                "ref_outside",
                f"$ref {ref!r} points outside this document; only "
                "same-document pointers like '#/color/blue/$value' are supported",
                at,
                owner,
            )
            return _FAILED
        node: Any = self.doc.tree
        walked: list[str] = []
        for part in _unescape(ref):
            if is_token(node) and part == "$value":
                name = ".".join(walked)
                if name not in self.defs:
                    break
                self.refs[owner].append(name)
                node = self.checked(self.resolve(name), name, at, owner)
                if node is _FAILED:
                    return _FAILED
                walked.append(part)
                continue
            key: str | int = part
            if isinstance(node, list) and part.isdigit():
                key = int(part)
            if (isinstance(node, dict) and key in node) or (
                isinstance(node, list) and isinstance(key, int) and key < len(node)
            ):
                node = node[key]  # type: ignore[index]
                walked.append(part)
                continue
            node = _FAILED
            break
        else:
            if is_token(node):  # a pointer to a whole token means its value
                name = ".".join(walked)
                self.refs[owner].append(name)
                return self.checked(self.resolve(name), name, at, owner)
            if isinstance(node, dict | list):
                return self.walk(node, at, owner)
            return node
        self.error(
            "missing_reference", f"$ref {ref!r} points at nothing in this document", at, owner
        )
        return _FAILED


def _unescape(ref: str) -> list[str]:
    body = ref[2:] if ref.startswith("#/") else ref[1:]
    return [p.replace("~1", "/").replace("~0", "~") for p in body.split("/")] if body else []


def _group_hint(tree: dict[str, Any], target: str) -> str:
    node: Any = tree
    for key in target.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and not is_token(node):
        root = " (use {" + target + ".$root})" if "$root" in node else ""
        return f"; it is a group{root}"
    return ""


def resolve_document(doc: TokenDocument) -> TokenSet:
    """Validate and resolve a token document; all problems in ``TokenSet.diagnostics``."""
    diags: list[Diagnostic] = []
    defs = flatten(doc, diags)
    res = _Resolver(doc, defs, diags)
    for name in defs:
        res.resolve(name)
    out = TokenSet(document=doc, diagnostics=diags)
    for name, definition in defs.items():
        value = res.values.get(name, _FAILED)
        type_ = res.types.get(name)
        src = definition.src_path
        if type_ is None and value is not _FAILED and name not in res.reported:
            res.error(
                "no_type",
                f"token {name!r} has no $type: give it one, or its group, or "
                "make its value a reference (types are never guessed from values)",
                src,
                name,
            )
        if value is _FAILED or type_ is None:
            continue
        if name not in res.reported and not _check_slots(res, definition, type_):
            for sub, message in check_value(type_, value):
                res.error("invalid_value", f"{name}: {message}", (*src, "$value", *sub), name)
        node = definition.node
        raw = node["$value"] if "$value" in node else {"$ref": node.get("$ref")}
        alias = ALIAS.match(raw) if isinstance(raw, str) else None
        deprecated = node.get("$deprecated", definition.group_deprecated)
        out.tokens[name] = Token(
            name=name,
            path=definition.path,
            type=type_,
            raw=raw,
            value=value,
            position=doc.position(src),
            description=node.get("$description"),
            deprecated=deprecated if isinstance(deprecated, bool | str) else False,
            extensions=node.get("$extensions"),
            alias_of=alias.group(1) if alias else res.pointer_token(node.get("$ref")),
            refs=tuple(dict.fromkeys(res.refs.get(name, ()))),
        )
    return out


def _check_slots(res: _Resolver, definition: TokenDef, type_: str) -> bool:
    """A reference inside a composite must name a token of the property's type (True: not)."""
    slots = SLOT_TYPES.get(type_)
    raw = definition.node.get("$value")
    found = False
    if slots is None or isinstance(raw, str):
        return found
    items = raw if isinstance(raw, list) else [raw]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        for slot, want in slots.items():
            sub = item.get(slot)
            m = ALIAS.match(sub) if isinstance(sub, str) else None
            got = res.types.get(m.group(1)) if m else None
            if got and got != want:
                at = (
                    *definition.src_path,
                    "$value",
                    *((index,) if isinstance(raw, list) else ()),
                    slot,
                )
                res.error(
                    "type_mismatch",
                    f"{definition.name}: {slot} must reference a {want} "
                    f"token, but {sub} is a {got}",
                    at,
                    definition.name,
                )
                found = True
    return found
