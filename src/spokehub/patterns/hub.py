"""A hub: a folder of pattern manifests and their sources, loaded and validated.

``load_hub(root)`` reads every ``patterns/*.yaml`` manifest, matches each pattern's source
globs (relative to the hub root), and digests the matched files. A design-token pattern is
resolved lazily, once per resolver permutation (``Pattern.token_sets()``), and cached on the
object; an OpenAPI pattern is parsed with positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spokehub.patterns.canonical import digest, digest_bytes
from spokehub.patterns.dtcg.document import TokenDocument
from spokehub.patterns.dtcg.files import load_token_file
from spokehub.patterns.dtcg.resolve import TokenSet, resolve_document
from spokehub.patterns.dtcg.resolver import Resolver, load_resolver
from spokehub.patterns.errors import (
    Diagnostic,
    PatternNotFound,
    PatternValidationError,
    Position,
)
from spokehub.patterns.manifest import PatternManifest, load_manifests
from spokehub.patterns.source import SourceDoc, SourceSyntaxError, load_json, load_source

__all__ = ["Hub", "Pattern", "load_hub"]

Permutation = tuple[dict[str, str], TokenSet]


@dataclass(slots=True)
class Pattern:
    """One pattern of a hub: its manifest, its matched source files and their digests."""

    manifest: PatternManifest
    root: Path
    files: dict[str, str]  # relative path -> sha256 of its bytes
    diagnostics: list[Diagnostic] = field(default_factory=list)
    _resolver: Resolver | None = None
    _sets: list[Permutation] | None = None
    _doc: SourceDoc | None = None

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def digest(self) -> str:
        """Content digest: the manifest's fields and every source file's digest."""
        return digest(
            {
                "manifest": self.manifest.to_dict() | {"file": None, "line": None},
                "files": self.files,
            }
        )

    def resolver(self) -> Resolver | None:
        if self._resolver is None and self.manifest.resolver:
            path = self.root / self.manifest.resolver
            self._resolver = load_resolver(path, root=self.root)
        return self._resolver

    def token_sets(self) -> list[Permutation]:
        """Resolved tokens per permutation (resolver inputs), the default one first."""
        if self._sets is not None:
            return self._sets
        resolver = self.resolver()
        if resolver is not None:
            perms = resolver.permutations() if not _fatal(resolver.diagnostics) else [{}]
            # Built aside and published whole: another thread must never see half a list.
            sets: list[Permutation] = []
            for inputs in perms:
                try:
                    sets.append((inputs, resolver.resolve(inputs)))
                except PatternValidationError as exc:
                    sets.append((inputs, TokenSet(diagnostics=exc.diagnostics)))
            self._sets = sets
            return sets
        doc = TokenDocument()
        parse_errors: list[Diagnostic] = []
        for rel in self.files:
            try:
                doc.merge(load_token_file(self.root / rel, rel, rel))
            except SourceSyntaxError as exc:
                parse_errors.append(exc.diagnostic)
        tokens = resolve_document(doc)
        tokens.diagnostics[:0] = parse_errors
        self._sets = [({}, tokens)]
        return self._sets

    def tokens(self) -> TokenSet:
        """The default permutation's tokens."""
        return self.token_sets()[0][1]

    def document(self) -> SourceDoc:
        """The parsed (first) source file: an OpenAPI spec, a doc, a snippet."""
        if self._doc is None:
            rel = next(iter(self.files))
            self._doc = load_source(self.root / rel, rel)
        return self._doc

    def validate(self) -> list[Diagnostic]:
        """Every problem of this pattern (deduplicated across permutations)."""
        out = list(self.diagnostics)
        if self.manifest.kind == "design-tokens":
            resolver = self.resolver()
            if resolver is not None and _fatal(resolver.diagnostics):
                return out + resolver.diagnostics
            seen: set[tuple[Any, ...]] = set()
            for _inputs, tokens in self.token_sets():
                for d in tokens.diagnostics:
                    key = (d.code, d.message, d.position)
                    if key not in seen:
                        seen.add(key)
                        out.append(d)
        elif self.manifest.kind == "openapi" and self.files:
            from spokehub.patterns.openapi import check_openapi

            try:
                out.extend(check_openapi(self.document()))
            except SourceSyntaxError as exc:
                out.append(exc.diagnostic)
        return out


def _fatal(diags: list[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diags)


@dataclass(slots=True)
class Hub:
    """Every pattern of a hub folder, and documents of other kinds for other layers."""

    root: Path
    patterns: dict[str, Pattern]
    others: list[SourceDoc]
    diagnostics: list[Diagnostic]

    def get(self, pattern_id: str) -> Pattern:
        try:
            return self.patterns[pattern_id]
        except KeyError:
            known = ", ".join(sorted(self.patterns)) or "none"
            raise PatternNotFound(
                f"no pattern {pattern_id!r} in {self.root} (known: {known})"
            ) from None

    def validate(self) -> list[Diagnostic]:
        """Manifest problems and every pattern's problems, in one pass."""
        out = list(self.diagnostics)
        for pattern in self.patterns.values():
            out.extend(pattern.validate())
        return out


def _match(
    root: Path, globs: tuple[str, ...], manifest: PatternManifest
) -> tuple[dict[str, str], list[Diagnostic]]:
    files: dict[str, str] = {}
    diags: list[Diagnostic] = []
    for index, pattern in enumerate(globs):
        matched = sorted(p for p in root.glob(pattern) if p.is_file())
        if not matched:
            pos = manifest.position
            diags.append(
                Diagnostic(
                    "no_sources",
                    f"source glob {pattern!r} of pattern "
                    f"{manifest.id!r} matches no file under {root}",
                    Position(pos.file, pos.line, pos.column),
                    f"#/spec/sources/{index}",
                )
            )
        for path in matched:
            rel = path.relative_to(root).as_posix()
            files.setdefault(rel, digest_bytes(path.read_bytes()))
    if manifest.resolver:
        path = root / manifest.resolver
        if path.is_file():
            files.setdefault(manifest.resolver, digest_bytes(path.read_bytes()))
        else:
            pos = manifest.position
            diags.append(
                Diagnostic(
                    "no_resolver",
                    f"resolver {manifest.resolver!r} does not exist",
                    pos,
                    "#/spec/resolver",
                )
            )
    return dict(sorted(files.items())), diags


def load_hub(root: Path | str) -> Hub:
    """Load a hub folder: ``patterns/**/*.yaml`` manifests and their sources."""
    root = Path(root)
    folder = root / "patterns"
    files = sorted([*folder.glob("**/*.yaml"), *folder.glob("**/*.yml")])
    if not files:
        raise PatternNotFound(
            f"no manifests in {folder}: a hub keeps its Pattern manifests in patterns/*.yaml"
        )
    manifests, others, diags = load_manifests(files, root)
    patterns: dict[str, Pattern] = {}
    for manifest in manifests:
        matched, problems = _match(root, manifest.sources, manifest)
        if manifest.resolver and any(d.code == "no_resolver" for d in problems):
            manifest = _without_resolver(manifest)
        patterns[manifest.id] = Pattern(manifest, root, matched, problems)
    return Hub(root, patterns, others, diags)


def _without_resolver(manifest: PatternManifest) -> PatternManifest:
    from dataclasses import replace

    return replace(manifest, resolver=None)


def parse_json_text(text: str, file: str) -> SourceDoc:
    """Parse JSON with positions (re-exported for callers that hold text, not files)."""
    return load_json(text, file)
