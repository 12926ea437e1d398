"""Source documents that remember where every key came from.

``load_json`` is a small JSON reader (strings are decoded by the C scanner of the standard
library) that records the position of every object key and array item, keyed by its path; the
standard ``json`` module cannot report positions. ``load_yaml`` does the same from PyYAML's node
marks. Both return a :class:`SourceDoc`; a malformed file raises :class:`SourceSyntaxError` with
the position of the fault.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from spokehub.patterns.errors import Diagnostic, Position

__all__ = [
    "Path_",
    "SourceDoc",
    "SourceSyntaxError",
    "load_json",
    "load_source",
    "load_yaml",
    "load_yaml_all",
]

Path_ = tuple[str | int, ...]

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")


class SourceSyntaxError(ValueError):
    """The file is not well-formed JSON or YAML."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(str(diagnostic))
        self.diagnostic = diagnostic


@dataclass(slots=True)
class SourceDoc:
    """A parsed document: its value and the position of every path in it."""

    file: str
    value: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[tuple[Path_, tuple[int, int]]] = field(default_factory=list)

    def position(self, path: Path_) -> Position:
        """The position of ``path`` or of its nearest ancestor that has one."""
        while True:
            found = self.positions.get(path)
            if found is not None:
                return Position(self.file, found[0], found[1])
            if not path:
                return Position(self.file, 1, 1)
            path = path[:-1]


class _Lines:
    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1


class _JsonReader:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.lines = _Lines(text)
        self.doc = SourceDoc(file, None)

    def fail(self, offset: int, message: str) -> SourceSyntaxError:
        line, col = self.lines.at(offset)
        return SourceSyntaxError(
            Diagnostic("json_syntax", f"malformed JSON: {message}", Position(self.file, line, col))
        )

    def skip(self, i: int) -> int:
        return _WS.match(self.text, i).end()  # type: ignore[union-attr]

    def read(self) -> SourceDoc:
        i = self.skip(0)
        self.doc.positions[()] = self.lines.at(i)
        self.doc.value, i = self.value(i, ())
        i = self.skip(i)
        if i != len(self.text):
            raise self.fail(i, "extra data after the document")
        return self.doc

    def value(self, i: int, path: Path_) -> tuple[Any, int]:
        text = self.text
        if i >= len(text):
            raise self.fail(i, "unexpected end of file")
        ch = text[i]
        if ch == "{":
            return self.obj(i + 1, path)
        if ch == "[":
            return self.arr(i + 1, path)
        if ch == '"':
            return self.string(i)
        for word, val in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, i):
                return val, i + len(word)
        m = _NUMBER.match(text, i)
        if m is None or m.end() == i:
            raise self.fail(i, f"unexpected character {ch!r}")
        num = m.group()
        return (float(num) if m.group(1) or m.group(2) else int(num)), m.end()

    def string(self, i: int) -> tuple[str, int]:
        try:
            return scanstring(self.text, i + 1, True)  # type: ignore[no-any-return]
        except json.JSONDecodeError as exc:
            raise self.fail(exc.pos, exc.msg) from None

    def obj(self, i: int, path: Path_) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        i = self.skip(i)
        if self.text.startswith("}", i):
            return out, i + 1
        while True:
            if not self.text.startswith('"', i):
                raise self.fail(i, "expected a property name in double quotes")
            at = self.lines.at(i)
            key, i = self.string(i)
            i = self.skip(i)
            if not self.text.startswith(":", i):
                raise self.fail(i, "expected ':' after a property name")
            child = (*path, key)
            if key in out:
                self.doc.duplicates.append((child, at))
            self.doc.positions[child] = at
            out[key], i = self.value(self.skip(i + 1), child)
            i = self.skip(i)
            if self.text.startswith(",", i):
                i = self.skip(i + 1)
                continue
            if self.text.startswith("}", i):
                return out, i + 1
            raise self.fail(i, "expected ',' or '}'")

    def arr(self, i: int, path: Path_) -> tuple[list[Any], int]:
        out: list[Any] = []
        i = self.skip(i)
        if self.text.startswith("]", i):
            return out, i + 1
        while True:
            child = (*path, len(out))
            self.doc.positions[child] = self.lines.at(i)
            item, i = self.value(i, child)
            out.append(item)
            i = self.skip(i)
            if self.text.startswith(",", i):
                i = self.skip(i + 1)
                continue
            if self.text.startswith("]", i):
                return out, i + 1
            raise self.fail(i, "expected ',' or ']'")


def load_json(text: str, file: str) -> SourceDoc:
    """Parse JSON text, recording the position of every key and item."""
    return _JsonReader(text, file).read()


def load_yaml(text: str, file: str) -> SourceDoc:
    """Parse one YAML document, recording positions from the node marks."""
    docs = load_yaml_all(text, file)
    return docs[0] if docs else SourceDoc(file, None, {(): (1, 1)})


def load_yaml_all(text: str, file: str) -> list[SourceDoc]:
    """Parse every document of a YAML stream (``---`` separated), with positions."""
    import yaml  # lazily: keeps ``import spokehub`` light

    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SourceSyntaxError(
            Diagnostic(
                "yaml_syntax",
                f"malformed YAML: {exc.problem or exc.context}",
                Position(file, line, col),
            )
        ) from None
    out = []
    for node in nodes:
        doc = SourceDoc(file, None)
        doc.positions[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
        doc.value = _from_node(node, (), doc, yaml.SafeLoader(""))
        out.append(doc)
    return out


def _from_node(node: Any, path: Path_, doc: SourceDoc, loader: Any) -> Any:
    import yaml

    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(loader.construct_object(key_node, deep=True))
            at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            child = (*path, key)
            if key in out:
                doc.duplicates.append((child, at))
            doc.positions[child] = at
            out[key] = _from_node(value_node, child, doc, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            doc.positions[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_from_node(item, child, doc, loader))
        return items
    return loader.construct_object(node, deep=True)


def load_source(path: Path, display: str | None = None) -> SourceDoc:
    """Read a ``.json``/``.tokens``/``.yaml`` file by its suffix (JSON unless YAML)."""
    text = path.read_text(encoding="utf-8")
    name = display or str(path)
    if path.suffix in (".yaml", ".yml"):
        return load_yaml(text, name)
    return load_json(text, name)
