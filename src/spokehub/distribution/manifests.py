"""Manifests: load a hub folder's YAML, check it against the schemas, build typed objects.

``load_hub(folder)`` reads every ``*.yaml``/``*.yml`` under the folder's ``manifests/`` (or the
folder itself), refuses unknown kinds and schema errors with file and line, then runs the
semantic checks in ``validate.py`` (selectors that match nothing, missing references, transform
cycles, adapters not installed, credentials that do not resolve, CEL that does not compile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs

from spokehub.distribution.errors import ManifestError
from spokehub.distribution.schemas import ENVELOPE, SPECS
from spokehub.distribution.yamlpos import Located, load_documents

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def seconds(text: str | None, default: float) -> float:
    """``"10m"`` -> 600.0 (the schemas already checked the shape)."""
    if not text:
        return default
    for unit in ("ms", "s", "m", "h", "d"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * _UNITS[unit]
    raise ValueError(f"not a duration: {text!r} (use e.g. 500ms, 30s, 10m, 1h)")


@dataclass(frozen=True, slots=True)
class Manifest:
    """One object from a YAML file: kind, name, labels, spec, and where it came from."""

    kind: str
    name: str
    labels: dict[str, str]
    spec: dict[str, Any]
    doc: Located = field(repr=False)

    def where(self, pointer: str = "") -> tuple[str, int]:
        return self.doc.file, self.doc.line_of(pointer)

    def error(self, message: str, pointer: str = "") -> ManifestError:
        file, line = self.where(pointer)
        return ManifestError(
            f"{self.kind} {self.name}: {message}", file=file, line=line, path=pointer
        )


@dataclass(frozen=True, slots=True)
class Hub:
    """Every manifest of a hub folder, by kind and name."""

    root: Path
    objects: dict[str, dict[str, Manifest]]

    def of(self, kind: str) -> dict[str, Manifest]:
        return self.objects.get(kind, {})

    def get(self, kind: str, name: str) -> Manifest:
        found = self.of(kind).get(name)
        if found is None:
            known = ", ".join(sorted(self.of(kind))) or "none"
            raise ManifestError(f"no {kind} named {name!r} in {self.root} (known: {known})")
        return found

    @property
    def targets(self) -> dict[str, Manifest]:
        return self.of("Target")


_ENVELOPE = jsonschema_rs.validator_for(ENVELOPE)
_SPECS = {kind: jsonschema_rs.validator_for(schema) for kind, schema in SPECS.items()}


def _pointer(parts: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _schema_errors(doc: Located) -> None:
    errors = list(_ENVELOPE.iter_errors(doc.value))
    if not errors and isinstance(doc.value, dict):
        errors = [e for e in _SPECS[doc.value["kind"]].iter_errors(doc.value["spec"])]
        prefix = "/spec"
    else:
        prefix = ""
    if errors:
        first = errors[0]
        pointer = prefix + _pointer(list(first.instance_path))
        kind = doc.value.get("kind") if isinstance(doc.value, dict) else None
        hint = f"; kinds are {', '.join(SPECS)}" if pointer == "/kind" and kind not in SPECS else ""
        raise ManifestError(
            f"{pointer or '/'}: {first.message}{hint}",
            file=doc.file,
            line=doc.line_of(pointer),
            path=pointer,
        )


def manifest_files(root: Path) -> list[Path]:
    folder = root / "manifests" if (root / "manifests").is_dir() else root
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_hub(root: str | Path, *, check: bool = True) -> Hub:
    """Load and validate every manifest of a hub folder."""
    base = Path(root).resolve()
    if not base.is_dir():
        raise ManifestError(f"hub folder {base} does not exist; pass --hub DIR")
    objects: dict[str, dict[str, Manifest]] = {}
    files = manifest_files(base)
    if not files:
        raise ManifestError(f"no manifests (*.yaml) in {base} or {base / 'manifests'}")
    for path in files:
        shown = str(path.relative_to(base.parent)) if base.parent in path.parents else str(path)
        for doc in load_documents(path.read_text(), shown):
            _schema_errors(doc)
            value = doc.value
            meta = value["metadata"]
            item = Manifest(
                value["kind"], meta["name"], dict(meta.get("labels", {})), value["spec"], doc
            )
            same = objects.setdefault(item.kind, {})
            if item.name in same:
                file, line = same[item.name].where()
                raise item.error(f"defined twice (first at {file}:{line})", "/metadata/name")
            same[item.name] = item
    hub = Hub(base, objects)
    if check:
        from spokehub.distribution.validate import validate_hub

        validate_hub(hub)
    return hub
