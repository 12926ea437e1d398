"""Semantic mapping: propose which field of one schema feeds which field of another.

``map_schema(source, target)`` scores every (source field, target field) pair from three
signals and proposes a one-to-one mapping:

- **meaning**: the cosine similarity of embeddings of each field's words (its name split into
  words, its description, a few sample values);
- **name**: how much the names' word sets overlap (``unitPrice`` and ``price_unit`` agree);
- **type**: whether the JSON types are compatible (a number does not feed a boolean).

Pairs whose score is under ``threshold`` are marked for a human (``needs_review``); in a
workflow, ``review_mapping`` asks through a durable approval. An accepted mapping is stored
(session memory, so every worker sees it) and reused by ``load_mapping``; its ``transform``
turns a source record into a target record, which is how integrations and distribution use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from spokehub.intelligence.embeddings import Embedder, default_embedder
from spokehub.runtime.client import Client
from spokehub.runtime.primitives import approval

__all__ = [
    "FieldMatch",
    "FieldSpec",
    "SchemaMapping",
    "fields_of",
    "load_mapping",
    "map_schema",
    "review_mapping",
    "save_mapping",
]

_NAMESPACE = "spokehub.schema-mappings"
WEIGHTS = {"meaning": 0.6, "name": 0.3, "type": 0.1}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a schema: its name, and whatever helps tell what it means."""

    name: str
    description: str = ""
    type: str = ""
    samples: tuple[Any, ...] = ()

    def words(self) -> str:
        parts = [" ".join(_split(self.name))]
        if self.description:
            parts.append(self.description)
        if self.samples:
            parts.append("e.g. " + ", ".join(str(s) for s in self.samples[:3]))
        return ". ".join(parts)


@dataclass(frozen=True, slots=True)
class FieldMatch:
    source: str
    target: str
    score: float
    meaning: float
    name: float
    type: float
    needs_review: bool


@dataclass(frozen=True, slots=True)
class SchemaMapping:
    """A proposed (or accepted) mapping from ``source_id`` fields to ``target_id`` fields."""

    source_id: str
    target_id: str
    matches: tuple[FieldMatch, ...]
    unmatched_source: tuple[str, ...] = ()
    unmatched_target: tuple[str, ...] = ()
    accepted: bool = False
    reviewer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_review(self) -> list[FieldMatch]:
        return [m for m in self.matches if m.needs_review]

    def pairs(self) -> dict[str, str]:
        return {m.source: m.target for m in self.matches}

    def transform(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The target record for ``record`` (dotted names reach into nested objects)."""
        out: dict[str, Any] = {}
        for m in self.matches:
            found, value = _get(record, m.source)
            if found:
                _set(out, m.target, value)
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchemaMapping:
        matches = tuple(FieldMatch(**m) for m in data["matches"])
        rest = {k: v for k, v in data.items() if k != "matches"}
        rest["unmatched_source"] = tuple(rest.get("unmatched_source", ()))
        rest["unmatched_target"] = tuple(rest.get("unmatched_target", ()))
        return cls(matches=matches, **rest)


def fields_of(schema: Any) -> list[FieldSpec]:
    """Fields from a JSON Schema object (nested objects as dotted names), a list of
    ``FieldSpec``/dicts, or a pydantic model class."""
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        schema = schema.model_json_schema()
    if isinstance(schema, Mapping):
        return _from_json_schema(schema, "", schema)
    out = []
    for item in schema:
        if isinstance(item, FieldSpec):
            out.append(item)
        elif isinstance(item, Mapping):
            samples = tuple(item.get("samples", ()))
            out.append(FieldSpec(item["name"], item.get("description", ""),
                                 item.get("type", ""), samples))  # fmt: skip
        else:
            raise TypeError(f"a field is a FieldSpec or a dict with a name, got {item!r}")
    return out


def _deref(spec: Any, root: Mapping[str, Any]) -> Any:
    """Follow a local ``$ref`` (``#/$defs/Name``, as pydantic writes nested models)."""
    ref = spec.get("$ref") if isinstance(spec, Mapping) else None
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return spec
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return {**node, **{k: v for k, v in spec.items() if k != "$ref"}}


def _from_json_schema(
    schema: Mapping[str, Any], prefix: str, root: Mapping[str, Any]
) -> list[FieldSpec]:
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        raise ValueError("a JSON Schema for mapping must be an object with properties")
    out: list[FieldSpec] = []
    for name, spec in props.items():
        full = f"{prefix}{name}"
        spec = _deref(spec, root)
        if isinstance(spec, Mapping) and "properties" in spec:
            out.extend(_from_json_schema(spec, full + ".", root))
            continue
        spec = spec if isinstance(spec, Mapping) else {}
        kind = spec.get("type", "")
        out.append(
            FieldSpec(
                full,
                str(spec.get("description", spec.get("title", ""))),
                kind if isinstance(kind, str) else "",
                tuple(spec.get("examples", ())),
            )
        )
    return out


def map_schema(
    source: Any,
    target: Any,
    *,
    source_id: str = "source",
    target_id: str = "target",
    threshold: float = 0.4,
    embedder: Embedder | None = None,
) -> SchemaMapping:
    """Propose a one-to-one mapping of ``source`` fields onto ``target`` fields."""
    src, dst = fields_of(source), fields_of(target)
    if not src or not dst:
        raise ValueError("both schemas need at least one field")
    model = embedder or default_embedder()
    vectors = model.embed([f.words() for f in src] + [f.words() for f in dst])
    sv, tv = vectors[: len(src)], vectors[len(src) :]
    scored = []
    for i, s in enumerate(src):
        for j, t in enumerate(dst):
            meaning = max(0.0, _dot(sv[i], tv[j]))
            name = _name_similarity(s.name, t.name)
            kind = _type_compat(s.type, t.type)
            score = WEIGHTS["meaning"] * meaning + WEIGHTS["name"] * name + WEIGHTS["type"] * kind
            if kind == 0.0:
                score *= 0.5  # incompatible types: possible only with a conversion
            scored.append((score, i, j, meaning, name, kind))
    scored.sort(key=lambda item: (-item[0], item[1], item[2]))
    used_s: set[int] = set()
    used_t: set[int] = set()
    matches = []
    for score, i, j, meaning, name, kind in scored:  # greedy: best pairs first, one-to-one
        if i in used_s or j in used_t:
            continue
        used_s.add(i)
        used_t.add(j)
        matches.append(FieldMatch(src[i].name, dst[j].name, round(score, 4), round(meaning, 4),
                                  round(name, 4), kind, score < threshold))  # fmt: skip
    matches.sort(key=lambda m: [f.name for f in src].index(m.source))
    return SchemaMapping(
        source_id,
        target_id,
        tuple(matches),
        tuple(f.name for k, f in enumerate(src) if k not in used_s),
        tuple(f.name for k, f in enumerate(dst) if k not in used_t),
    )


async def review_mapping(mapping: SchemaMapping, *, assignees: Sequence[str] = ()) -> SchemaMapping:
    """In a workflow: a human confirms the low-score pairs (durable approval); accepted.

    Pairs with enough confidence are accepted without asking. Rejecting the approval raises
    ``ApprovalRejected``.
    """
    reviewer = None
    doubtful = mapping.needs_review
    if doubtful:
        decision = await approval(
            f"schema-mapping:{mapping.source_id}->{mapping.target_id}",
            subject={
                "review": [asdict(m) for m in doubtful],
                "confident": [asdict(m) for m in mapping.matches if not m.needs_review],
            },
            assignees=list(assignees),
        )
        reviewer = decision.by
    return SchemaMapping(
        mapping.source_id, mapping.target_id, mapping.matches, mapping.unmatched_source,
        mapping.unmatched_target, accepted=True, reviewer=reviewer,
    )  # fmt: skip


async def save_mapping(client: Client, mapping: SchemaMapping) -> int:
    """Store an accepted mapping (a new version); returns the version."""
    from spokehub.intelligence.memory import SessionMemory

    if not mapping.accepted:
        raise ValueError("only an accepted mapping is stored; review it first")
    key = f"{mapping.source_id}->{mapping.target_id}"
    payload = json.loads(json.dumps(mapping.to_dict(), default=list))
    return await SessionMemory(client).put(_NAMESPACE, key, payload)


async def load_mapping(client: Client, source_id: str, target_id: str) -> SchemaMapping | None:
    """The newest accepted mapping between the two schemas, or None."""
    from spokehub.intelligence.memory import SessionMemory

    found = await SessionMemory(client).get(_NAMESPACE, f"{source_id}->{target_id}")
    if found is None or not isinstance(found.value, dict):
        return None
    return SchemaMapping.from_dict(found.value)


def _split(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name.replace(".", " "))
    return [w.lower() for w in re.split(r"[\s_\-]+", spaced) if w]


_SYNONYMS = {"qty": "quantity", "desc": "description", "img": "image", "addr": "address",
             "amt": "amount", "num": "number", "id": "id", "sku": "sku"}  # fmt: skip


def _name_similarity(a: str, b: str) -> float:
    wa = {_SYNONYMS.get(w, w) for w in _split(a)}
    wb = {_SYNONYMS.get(w, w) for w in _split(b)}
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


_NUMERIC = {"number", "integer"}


def _type_compat(a: str, b: str) -> float:
    if not a or not b or a == b:
        return 1.0
    if a in _NUMERIC and b in _NUMERIC:
        return 1.0
    if "string" in (a, b):
        return 0.5  # anything can be written as a string, with care
    return 0.0


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return float(sum(x * y for x, y in zip(a, b, strict=True)))


def _get(record: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _set(out: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
