"""Pattern manifests: ``kind: Pattern`` YAML documents, checked against a shipped JSON Schema.

A hub keeps its manifests in ``patterns/*.yaml`` (several ``---`` documents per file allowed;
documents of other kinds, such as a distribution's ``Target``, are returned untouched for the
layer that owns them). Every schema violation becomes a :class:`Diagnostic` naming the file,
line and column of the offending key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from spokehub.patterns.dtcg.tree import pointer_of
from spokehub.patterns.errors import Diagnostic, Position
from spokehub.patterns.source import SourceDoc, SourceSyntaxError, load_yaml_all

__all__ = [
    "API_VERSION",
    "BumpRule",
    "PatternManifest",
    "load_manifests",
    "pattern_schema",
    "validate_manifest",
]

API_VERSION = "spokehub.dev/v1alpha1"


@dataclass(frozen=True, slots=True)
class BumpRule:
    """Override of the default bump for one kind of change under one token group."""

    group: str
    change: str
    bump: str


@dataclass(frozen=True, slots=True)
class PatternManifest:
    """A validated ``kind: Pattern`` document."""

    id: str
    version: str
    kind: str
    owner: str
    license: str
    sources: tuple[str, ...]
    position: Position
    labels: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    format: str | None = None
    resolver: str | None = None
    bump: str = "auto"
    rules: tuple[BumpRule, ...] = ()
    platforms: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "kind": self.kind,
            "owner": self.owner,
            "license": self.license,
            "labels": self.labels,
            "sources": list(self.sources),
            "resolver": self.resolver,
            "file": self.position.file,
            "line": self.position.line,
        }


@cache
def pattern_schema() -> dict[str, Any]:
    """The JSON Schema spokehub ships for Pattern manifests."""
    text = resources.files("spokehub.patterns").joinpath("schemas/pattern.schema.json")
    return json.loads(text.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@cache
def _validator() -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for(pattern_schema())


def validate_manifest(doc: SourceDoc, base: tuple[str | int, ...] = ()) -> list[Diagnostic]:
    """Every schema violation of one manifest document, with positions."""
    out = []
    for error in _validator().iter_errors(doc.value):
        path = (*base, *error.instance_path)
        unexpected = getattr(error.kind, "unexpected", None)
        if unexpected:  # point at the unexpected key itself, not at its parent object
            path = (*path, unexpected[0])
        out.append(
            Diagnostic(
                "manifest_schema", _message(error, path), doc.position(path), pointer_of(path)
            )
        )
    return out


def _message(error: Any, path: tuple[str | int, ...]) -> str:
    key = ".".join(str(p) for p in path) or "(document)"
    return f"{key}: {error.message}"


def _manifest(doc: SourceDoc) -> PatternManifest:
    meta = doc.value["metadata"]
    spec = doc.value["spec"]
    versioning = spec.get("versioning", {})
    return PatternManifest(
        id=meta["id"],
        version=meta["version"],
        kind=spec["kind"],
        owner=meta["owner"],
        license=meta["license"],
        sources=tuple(spec["sources"]),
        position=doc.position(()),
        labels=dict(meta.get("labels", {})),
        description=meta.get("description"),
        format=spec.get("format"),
        resolver=spec.get("resolver"),
        bump=versioning.get("bump", "auto"),
        rules=tuple(
            BumpRule(r["group"], r["change"], r["bump"]) for r in versioning.get("rules", [])
        ),
        platforms=dict(spec.get("platforms", {})),
    )


def load_manifests(
    files: list[Path], root: Path
) -> tuple[list[PatternManifest], list[SourceDoc], list[Diagnostic]]:
    """Patterns, the documents of other kinds, and every problem, from manifest files."""
    patterns: list[PatternManifest] = []
    others: list[SourceDoc] = []
    diags: list[Diagnostic] = []
    seen: dict[str, Position] = {}
    for path in files:
        display = path.resolve().relative_to(root.resolve()).as_posix()
        try:
            docs = load_yaml_all(path.read_text(encoding="utf-8"), display)
        except SourceSyntaxError as exc:
            diags.append(exc.diagnostic)
            continue
        for doc in docs:
            if not isinstance(doc.value, dict) or doc.value.get("kind") != "Pattern":
                others.append(doc)
                continue
            problems = validate_manifest(doc)
            diags.extend(problems)
            if problems:
                continue
            manifest = _manifest(doc)
            if manifest.id in seen:
                diags.append(
                    Diagnostic(
                        "duplicate_pattern",
                        f"pattern id {manifest.id!r} is already declared at {seen[manifest.id]}",
                        doc.position(("metadata", "id")),
                        "#/metadata/id",
                    )
                )
                continue
            if manifest.kind == "design-tokens" and manifest.format not in (None, "dtcg/2025.10"):
                diags.append(
                    Diagnostic(
                        "unsupported_format",
                        f"format {manifest.format!r} is not supported; use dtcg/2025.10",
                        doc.position(("spec", "format")),
                        "#/spec/format",
                    )
                )
            seen[manifest.id] = manifest.position
            patterns.append(manifest)
    return patterns, others, diags
