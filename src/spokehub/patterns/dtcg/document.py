"""A token document: a tree of groups and tokens, with where each token came from.

One file gives one document; the Resolver module merges several (last wins, a token replaced
whole, groups merged key by key). Every token keeps the position of its key and the label of
the set or context that contributed it, and the document keeps every contribution in order, so
``explain`` can say which set or context produced a value and which it overrode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spokehub.patterns.errors import Position
from spokehub.patterns.source import Path_, SourceDoc

__all__ = ["Contribution", "TokenDocument", "is_token"]


def is_token(node: Any) -> bool:
    """An object with ``$value`` (or ``$ref`` instead of it) is a token; any other is a group."""
    return isinstance(node, dict) and ("$value" in node or "$ref" in node)


@dataclass(frozen=True, slots=True)
class Contribution:
    """One definition of a token by one source (in merge order)."""

    origin: str
    position: Position

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "file": self.position.file,
            "line": self.position.line,
            "column": self.position.column,
        }


@dataclass(slots=True)
class TokenDocument:
    """A (possibly merged) token tree with positions for every path."""

    tree: dict[str, Any] = field(default_factory=dict)
    positions: dict[Path_, Position] = field(default_factory=dict)
    history: dict[Path_, list[Contribution]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # file -> digest of its bytes

    @classmethod
    def from_source(cls, doc: SourceDoc, origin: str = "") -> TokenDocument:
        """A document of one parsed file (its value must be an object to hold tokens)."""
        tree = doc.value if isinstance(doc.value, dict) else {}
        positions = {path: Position(doc.file, at[0], at[1]) for path, at in doc.positions.items()}
        out = cls(tree, positions)
        label = origin or doc.file
        _record(tree, (), out, label)
        return out

    def position(self, path: Path_) -> Position:
        """Position of ``path``, else of its nearest ancestor that has one."""
        while True:
            found = self.positions.get(path)
            if found is not None:
                return found
            if not path:
                return Position("<merged>", 1, 1)
            path = path[:-1]

    def merge(self, other: TokenDocument) -> None:
        """Merge ``other`` over this document: last wins, tokens replaced whole."""
        _merge_into(self.tree, other.tree)
        self.positions.update(other.positions)
        for path, contributions in other.history.items():
            self.history.setdefault(path, []).extend(contributions)
        self.files.update(other.files)


def _record(node: dict[str, Any], path: Path_, doc: TokenDocument, origin: str) -> None:
    for key, child in node.items():
        if not isinstance(child, dict) or (key.startswith("$") and key != "$root"):
            continue
        child_path = (*path, key)
        if is_token(child):
            doc.history[child_path] = [
                Contribution(origin, doc.positions.get(child_path) or doc.position(child_path))
            ]
        else:
            _record(child, child_path, doc, origin)


def _merge_into(base: dict[str, Any], over: dict[str, Any]) -> None:
    for key, value in over.items():
        old = base.get(key)
        if (
            isinstance(old, dict)
            and isinstance(value, dict)
            and not is_token(old)
            and not is_token(value)
        ):
            merged = dict(old)  # never mutate a group another document still holds
            _merge_into(merged, value)
            base[key] = merged
        else:
            base[key] = value
