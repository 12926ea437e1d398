"""YAML documents with the line of every value, so errors can say file:line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from spokehub.distribution.errors import ManifestError


@dataclass(slots=True)
class Located:
    """One YAML document: its value, and the line of each JSON Pointer inside it."""

    value: Any
    file: str
    line: int
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, pointer: str) -> int:
        """The line of ``pointer``, or of its nearest ancestor that has one."""
        while pointer:
            if pointer in self.lines:
                return self.lines[pointer]
            pointer = pointer.rsplit("/", 1)[0]
        return self.line


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _convert(node: yaml.Node, pointer: str, lines: dict[str, int], file: str) -> Any:
    lines[pointer] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _SCALARS.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise ManifestError(
                    f"duplicate key {key!r}", file=file, line=key_node.start_mark.line + 1
                )
            child = f"{pointer}/{_escape(key)}"
            out[key] = _convert(value_node, child, lines, file)
            lines[child] = key_node.start_mark.line + 1  # errors point at the key
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(n, f"{pointer}/{i}", lines, file) for i, n in enumerate(node.value)]
    return _SCALARS.construct_object(node, deep=True)


# One constructor for scalars (YAML 1.1 safe types); its state is per node, so sharing is fine.
_SCALARS = yaml.constructor.SafeConstructor()
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: ~10x faster


def load_documents(text: str, file: str) -> list[Located]:
    """Every document of a YAML stream with positions; bad YAML is a ManifestError with a line."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ManifestError(
            f"not valid YAML: {exc.problem}", file=file, line=(mark.line + 1) if mark else 0
        ) from exc
    docs = []
    for node in nodes:
        if node is None:
            continue
        lines: dict[str, int] = {}
        value = _convert(node, "", lines, file)
        docs.append(Located(value, file, node.start_mark.line + 1, lines))
    return docs
