"""The DTCG 2025.10 Resolver module: sets, modifiers, ``resolutionOrder``, inputs.

A resolver document names *sets* (token sources merged in order) and *modifiers* (named
alternatives, the *contexts*, one chosen per resolution by the *inputs*, e.g.
``{"theme": "dark"}``). ``resolutionOrder`` lists which sets and modifiers apply, in order; each
contributes its sources and later ones win. Aliases are resolved on the merged tree, so
``{color.bg}`` in a base set sees the dark palette when the dark context is chosen.

Sources are inline token objects or ``{"$ref": "file.tokens.json"}`` (relative to the resolver
file, optionally with a ``#/pointer`` into it) or, for modifiers and the order,
``{"$ref": "#/sets/name"}``. Files are parsed once and shared by every permutation.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spokehub.patterns.dtcg.document import Contribution, TokenDocument
from spokehub.patterns.dtcg.files import load_token_file
from spokehub.patterns.dtcg.resolve import TokenSet, resolve_document
from spokehub.patterns.dtcg.tree import pointer_of
from spokehub.patterns.errors import Diagnostic, PatternValidationError, Position
from spokehub.patterns.source import Path_, SourceDoc, SourceSyntaxError, load_json

__all__ = ["Explanation", "Modifier", "Resolver", "load_resolver"]


@dataclass(frozen=True, slots=True)
class Modifier:
    """A modifier: its contexts (name -> sources) and optional default context."""

    name: str
    contexts: dict[str, list[tuple[Any, Path_]]]
    default: str | None


@dataclass(frozen=True, slots=True)
class _Step:
    kind: str  # "set" | "modifier"
    name: str


@dataclass(slots=True)
class Explanation:
    """Which sets and contexts defined a token, in order; the last one won."""

    name: str
    inputs: dict[str, str]
    contributions: list[Contribution]
    alias_chain: list[str]
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": self.inputs,
            "winner": self.contributions[-1].to_dict() if self.contributions else None,
            "contributions": [c.to_dict() for c in self.contributions],
            "alias_chain": self.alias_chain,
            "value": self.value,
        }


@dataclass(slots=True)
class Resolver:
    """A loaded resolver document; ``resolve(inputs)`` gives one permutation's tokens."""

    file: str
    source: SourceDoc
    sets: dict[str, list[tuple[Any, Path_]]] = field(default_factory=dict)
    modifiers: dict[str, Modifier] = field(default_factory=dict)
    order: list[_Step] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    base: Path = Path(".")
    root: Path | None = None
    _files: dict[str, TokenDocument] = field(default_factory=dict)

    # -- inputs -----------------------------------------------------------------------------
    def check_inputs(self, inputs: Mapping[str, str]) -> dict[str, str]:
        """Inputs completed with defaults; every problem raises one PatternValidationError."""
        problems: list[Diagnostic] = []
        where = self.source.position(("modifiers",))
        for key, value in inputs.items():
            modifier = self.modifiers.get(key)
            if modifier is None:
                known = ", ".join(sorted(self.modifiers)) or "none"
                problems.append(
                    Diagnostic(
                        "unknown_modifier",
                        f"input {key!r} names no modifier (known: {known})",
                        where,
                        "#/modifiers",
                    )
                )
            elif value not in modifier.contexts:
                known = ", ".join(modifier.contexts)
                problems.append(
                    Diagnostic(
                        "unknown_context",
                        f"input {key}={value!r} names no "
                        f"context of modifier {key!r} (known: {known})",
                        self.source.position(("modifiers", key)),
                        f"#/modifiers/{key}/contexts",
                    )
                )
        chosen: dict[str, str] = {}
        for name, modifier in self.modifiers.items():
            if name in inputs:
                chosen[name] = inputs[name]
            elif modifier.default is not None:
                chosen[name] = modifier.default
            else:
                problems.append(
                    Diagnostic(
                        "missing_input",
                        f"modifier {name!r} has no default: "
                        f"give an input like {name}={next(iter(modifier.contexts), 'CONTEXT')}",
                        self.source.position(("modifiers", name)),
                        f"#/modifiers/{name}",
                    )
                )
        if problems:
            raise PatternValidationError(problems)
        return chosen

    def permutations(self) -> list[dict[str, str]]:
        """Every combination of contexts (the default permutation first)."""
        names = [s.name for s in self.order if s.kind == "modifier"]
        choices = []
        for name in names:
            modifier = self.modifiers[name]
            contexts = list(modifier.contexts)
            if modifier.default in contexts:
                contexts.remove(modifier.default)
                contexts.insert(0, modifier.default)
            choices.append(contexts)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]

    def default_inputs(self) -> dict[str, str]:
        return self.permutations()[0] if self.order else {}

    # -- resolution -------------------------------------------------------------------------
    def merged(self, inputs: Mapping[str, str]) -> TokenDocument:
        chosen = self.check_inputs(inputs)
        doc = TokenDocument()
        for step in self.order:
            if step.kind == "set":
                self._merge_sources(doc, self.sets[step.name], f"set:{step.name}")
            else:
                context = chosen[step.name]
                sources = self.modifiers[step.name].contexts[context]
                self._merge_sources(doc, sources, f"modifier:{step.name}={context}")
        return doc

    def resolve(self, inputs: Mapping[str, str] | None = None) -> TokenSet:
        """Tokens of the permutation ``inputs`` selects (defaults fill the rest)."""
        doc = self.merged(inputs or {})
        out = resolve_document(doc)
        out.diagnostics[:0] = self.diagnostics
        return out

    def explain(self, name: str, inputs: Mapping[str, str] | None = None) -> Explanation:
        """Which set or context produced ``name``'s value, and the alias chain it followed."""
        chosen = self.check_inputs(inputs or {})
        tokens = self.resolve(chosen)
        token = tokens.tokens.get(name)
        if token is None:
            raise KeyError(f"no token named {name!r} in permutation {chosen}")
        chain = [name]
        seen = {name}
        current = token
        while (
            current.alias_of and current.alias_of in tokens.tokens and current.alias_of not in seen
        ):
            chain.append(current.alias_of)
            seen.add(current.alias_of)
            current = tokens.tokens[current.alias_of]
        return Explanation(name, chosen, tokens.history(name), chain, token.value)

    def _merge_sources(
        self, doc: TokenDocument, sources: list[tuple[Any, Path_]], origin: str
    ) -> None:
        for source, at in sources:
            part = self._source_doc(source, at, origin)
            if part is not None:
                doc.merge(part)

    def _source_doc(self, source: Any, at: Path_, origin: str) -> TokenDocument | None:
        if isinstance(source, dict) and set(source) == {"$ref"}:
            return self._file(source["$ref"], at, origin)
        if not isinstance(source, dict):
            return None
        sub = SourceDoc(
            self.file,
            source,
            {
                path[len(at) :]: pos
                for path, pos in self.source.positions.items()
                if path[: len(at)] == at
            },
        )
        return TokenDocument.from_source(sub, origin)

    def _file(self, ref: str, at: Path_, origin: str) -> TokenDocument | None:
        file_part, _, fragment = ref.partition("#")
        path = (self.base / file_part).resolve()
        try:
            return load_token_file(path, _display(path, self.root), origin, fragment)
        except OSError as exc:
            self.diagnostics.append(
                Diagnostic(
                    "source_missing",
                    f"cannot read {file_part!r}: {exc.strerror}",
                    self.source.position(at),
                    pointer_of(at),
                )
            )
        except SourceSyntaxError as exc:
            self.diagnostics.append(exc.diagnostic)
        return None


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.as_posix()


class _Loader:
    def __init__(self, resolver: Resolver) -> None:
        self.r = resolver
        self.value: Any = resolver.source.value

    def error(self, code: str, message: str, path: Path_) -> None:
        self.r.diagnostics.append(
            Diagnostic(code, message, self.r.source.position(path), pointer_of(path))
        )

    def load(self) -> None:
        if not isinstance(self.value, dict):
            self.error("resolver_shape", "a resolver document must be a JSON object", ())
            return
        for key in self.value:
            if key not in {
                "$schema",
                "name",
                "version",
                "description",
                "sets",
                "modifiers",
                "resolutionOrder",
                "$defs",
                "$extensions",
            }:
                self.error("unknown_property", f"unknown resolver property {key!r}", (key,))
        if self.value.get("version") != "2025.10":
            self.error("resolver_version", 'version must be "2025.10"', ("version",))
        for name, body in _obj(self.value.get("sets")).items():
            self.r.sets[name] = self.sources(body, ("sets", name), allow_sets=True)
        for name, body in _obj(self.value.get("modifiers")).items():
            self.r.modifiers[name] = self.modifier(name, body, ("modifiers", name))
        order = self.value.get("resolutionOrder")
        if not isinstance(order, list) or not order:
            self.error(
                "resolution_order",
                "resolutionOrder must be a non-empty array",
                ("resolutionOrder",),
            )
            return
        seen: set[str] = set()
        for index, item in enumerate(order):
            step = self.step(item, ("resolutionOrder", index))
            if step is None:
                continue
            if step.name in seen and isinstance(item, dict) and "$ref" not in item:
                self.error(
                    "duplicate_name",
                    f"name {step.name!r} is used twice in resolutionOrder",
                    ("resolutionOrder", index, "name"),
                )
            seen.add(step.name)
            self.r.order.append(step)

    def sources(self, body: Any, at: Path_, *, allow_sets: bool) -> list[tuple[Any, Path_]]:
        sources = body.get("sources") if isinstance(body, dict) else None
        if not isinstance(sources, list):
            self.error("sources", "a set needs a sources array", at)
            return []
        out: list[tuple[Any, Path_]] = []
        for index, src in enumerate(sources):
            out.extend(self.source(src, (*at, "sources", index), allow_sets, set()))
        return out

    def source(
        self, src: Any, at: Path_, allow_sets: bool, seen: set[str]
    ) -> list[tuple[Any, Path_]]:
        if not isinstance(src, dict):
            self.error("source_shape", 'a source is a token object or {"$ref": ...}', at)
            return []
        ref = src.get("$ref") if set(src) == {"$ref"} else None
        if not isinstance(ref, str) or not ref.startswith("#"):
            return [(src, at)]
        if ref.startswith(("#/modifiers/", "#/resolutionOrder/")):
            what = "modifier" if "modifiers" in ref else "resolutionOrder item"
            self.error(
                "bad_reference", f"a source must not reference a {what} ({ref})", (*at, "$ref")
            )
            return []
        name = ref.removeprefix("#/sets/")
        target = _obj(self.value.get("sets")).get(name)
        if not ref.startswith("#/sets/") or target is None:
            self.error("missing_reference", f"$ref {ref!r} names no set", (*at, "$ref"))
            return []
        if name in seen:
            self.error("reference_cycle", f"set {name!r} references itself", (*at, "$ref"))
            return []
        out: list[tuple[Any, Path_]] = []
        for index, inner in enumerate(_obj(target).get("sources") or []):
            out.extend(
                self.source(inner, ("sets", name, "sources", index), allow_sets, seen | {name})
            )
        return out

    def modifier(self, name: str, body: Any, at: Path_) -> Modifier:
        contexts_raw = _obj(body).get("contexts") if isinstance(body, dict) else None
        contexts: dict[str, list[tuple[Any, Path_]]] = {}
        if not isinstance(contexts_raw, dict) or not contexts_raw:
            self.error("modifier_contexts", f"modifier {name!r} must have at least one context", at)
        else:
            if len(contexts_raw) < 2:
                self.r.diagnostics.append(
                    Diagnostic(
                        "modifier_contexts",
                        f"modifier {name!r} has one context; it should have at least two",
                        self.r.source.position((*at, "contexts")),
                        pointer_of((*at, "contexts")),
                        "warning",
                    )
                )
            for ctx, sources in contexts_raw.items():
                items = sources if isinstance(sources, list) else []
                contexts[ctx] = []
                for index, src in enumerate(items):
                    contexts[ctx].extend(
                        self.source(src, (*at, "contexts", ctx, index), True, set())
                    )
        default = _obj(body).get("default") if isinstance(body, dict) else None
        if default is not None and default not in contexts:
            self.error(
                "modifier_default",
                f"default {default!r} of modifier {name!r} is not one of its contexts",
                (*at, "default"),
            )
            default = None
        return Modifier(name, contexts, default)

    def step(self, item: Any, at: Path_) -> _Step | None:
        if isinstance(item, dict) and "$ref" in item:
            ref = item["$ref"]
            for prefix, ref_kind, table in (
                ("#/sets/", "set", self.r.sets),
                ("#/modifiers/", "modifier", self.r.modifiers),
            ):
                if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in table:
                    return _Step(ref_kind, ref[len(prefix) :])
            self.error("missing_reference", f"$ref {ref!r} names no set or modifier", (*at, "$ref"))
            return None
        kind = item.get("type") if isinstance(item, dict) else None
        name = item.get("name") if isinstance(item, dict) else None
        if kind not in ("set", "modifier") or not isinstance(name, str):
            self.error(
                "resolution_order",
                "an inline resolutionOrder item needs type (set|modifier) and name",
                at,
            )
            return None
        if kind == "set":
            self.r.sets[name] = self.sources(item, at, allow_sets=True)
        else:
            self.r.modifiers[name] = self.modifier(name, item, at)
        return _Step(kind, name)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def load_resolver(path: Path, *, root: Path | None = None) -> Resolver:
    """Load and check a resolver document; structural problems in ``.diagnostics``."""
    display = _display(path.resolve(), root.resolve() if root else None)
    text = path.read_text(encoding="utf-8")
    try:
        source = load_json(text, display)
    except SourceSyntaxError as exc:
        raise PatternValidationError([exc.diagnostic]) from None
    resolver = Resolver(
        display, source, base=path.resolve().parent, root=root.resolve() if root else None
    )
    _Loader(resolver).load()
    return resolver


def position_of(resolver: Resolver, path: Path_) -> Position:
    return resolver.source.position(path)
