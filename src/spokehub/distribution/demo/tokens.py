"""A minimal DTCG 2025.10 reader and platform renderers: the demo's stand-in for ``patterns``.

Enough of the format for the demo (groups with inherited ``$type``, curly-brace aliases,
``$deprecated``, srgb colour objects, dimensions, a resolver with one set and one ``theme``
modifier). The patterns layer's toolchain replaces this behind the ``ArtifactSource`` seam.
Output carries no timestamps, so the same input always renders the same bytes.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spokehub.distribution.errors import DistributionError

_ALIAS = re.compile(r"^\{([^{}]+)\}$")


@dataclass(frozen=True, slots=True)
class Token:
    name: str  # dotted path
    type: str
    value: Any  # resolved
    alias: str | None = None
    deprecated: str | None = None
    description: str = ""


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and "$value" not in value and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = json.loads(json.dumps(value))


def _load_sources(base: Path, sources: list[Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for src in sources:
        _merge(tree, json.loads((base / src["$ref"]).read_text()) if "$ref" in src else src)
    return tree


def resolve_tree(folder: Path, inputs: Mapping[str, str]) -> dict[str, Any]:
    """Merge the resolver's sets and selected modifier contexts, in resolutionOrder."""
    doc = json.loads((folder / "resolver.json").read_text())
    tree: dict[str, Any] = {}
    for item in doc["resolutionOrder"]:
        ref = item["$ref"].split("/")
        kind, name = ref[-2], ref[-1]
        if kind == "sets":
            _merge(tree, _load_sources(folder, doc["sets"][name]["sources"]))
        else:
            mod = doc["modifiers"][name]
            context = inputs.get(name, mod.get("default"))
            if context not in mod["contexts"]:
                raise DistributionError(f"resolver: {name}={context!r} is not a context")
            _merge(tree, _load_sources(folder, mod["contexts"][context]))
    return tree


def flatten(tree: Mapping[str, Any]) -> dict[str, Token]:
    raw: dict[str, tuple[str | None, dict[str, Any]]] = {}

    def walk(node: Mapping[str, Any], path: list[str], inherited: str | None) -> None:
        gtype = node.get("$type", inherited)
        for key, child in node.items():
            if key.startswith("$") or not isinstance(child, Mapping):
                continue
            if "$value" in child:
                raw[".".join([*path, key])] = (child.get("$type", gtype), dict(child))
            else:
                walk(child, [*path, key], gtype)

    walk(tree, [], None)
    out: dict[str, Token] = {}

    def resolve(name: str, trail: tuple[str, ...]) -> Token:
        if name in out:
            return out[name]
        if name in trail:
            raise DistributionError(f"alias cycle: {' -> '.join([*trail, name])}")
        if name not in raw:
            raise DistributionError(f"alias to unknown token {name!r}")
        ttype, body = raw[name]
        value, alias = body["$value"], None
        match = _ALIAS.match(value) if isinstance(value, str) else None
        if match:
            alias = match.group(1)
            target = resolve(alias, (*trail, name))
            value, ttype = target.value, ttype or target.type
        if ttype is None:
            raise DistributionError(f"token {name} has no $type")
        dep = body.get("$deprecated")
        token = Token(
            name,
            ttype,
            value,
            alias,
            dep if isinstance(dep, str) else None,
            body.get("$description", ""),
        )
        out[name] = token
        return token

    for name in sorted(raw):
        resolve(name, ())
    return out


def hex_of(color: Mapping[str, Any]) -> str:
    r, g, b = (round(float(c) * 255) for c in color["components"][:3])
    return f"#{r:02X}{g:02X}{b:02X}"


def _ident(name: str, sep: str) -> str:
    return name.replace(".", sep).replace("-", sep)


def _camel(name: str) -> str:
    parts = re.split(r"[.\-]", name)
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def css_value(t: Token) -> str:
    if t.type == "color":
        return hex_of(t.value).lower()
    if t.type == "dimension":
        return f"{t.value['value']}{t.value['unit']}"
    if isinstance(t.value, list):
        return ", ".join(str(v) for v in t.value)
    return str(t.value)


def render_css(light: dict[str, Token], dark: dict[str, Token], header: str) -> str:
    lines = [f"/* {header} */", ":root {"]
    for t in light.values():
        value = f"var(--{_ident(t.alias, '-')})" if t.alias else css_value(t)
        note = f" /* deprecated: {t.deprecated} */" if t.deprecated else ""
        lines.append(f"  --{_ident(t.name, '-')}: {value};{note}")
    lines += ["}", "", "[data-theme='dark'] {"]
    for name, t in dark.items():
        if name in light and css_value(light[name]) != css_value(t):
            lines.append(f"  --{_ident(name, '-')}: {css_value(t)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_swift(light: dict[str, Token], header: str) -> str:
    lines = [f"// {header}", "import SwiftUI", "", "public enum DesignTokens {"]
    for t in light.values():
        if t.deprecated:
            lines.append(f'    @available(*, deprecated, message: "{t.deprecated}")')
        name = _camel(t.name)
        if t.type == "color":
            r, g, b = (round(float(c), 3) for c in t.value["components"][:3])
            lines.append(f"    public static let {name} = Color(red: {r}, green: {g}, blue: {b})")
        elif t.type == "dimension":
            lines.append(f"    public static let {name}: CGFloat = {float(t.value['value'])}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_android(tokens: dict[str, Token], header: str, kind: str) -> str:
    lines = ['<?xml version="1.0" encoding="utf-8"?>', f"<!-- {header} -->", "<resources>"]
    for t in tokens.values():
        name = _ident(t.name, "_")
        if t.deprecated:
            lines.append(f"    <!-- deprecated: {t.deprecated} -->")
        if kind == "color" and t.type == "color":
            lines.append(f'    <color name="{name}">#FF{hex_of(t.value)[1:]}</color>')
        elif kind == "dimen" and t.type == "dimension":
            v = t.value["value"] * (16 if t.value["unit"] == "rem" else 1)
            lines.append(f'    <dimen name="{name}">{v}dp</dimen>')
    lines.append("</resources>")
    return "\n".join(lines) + "\n"


def render_markdown(light: dict[str, Token], dark: dict[str, Token], header: str) -> str:
    lines = [
        f"<!-- {header} -->",
        "# Design tokens",
        "",
        "| token | light | dark | note |",
        "|---|---|---|---|",
    ]
    for name, t in light.items():
        d = css_value(dark[name]) if name in dark else ""
        note = f"deprecated: {t.deprecated}" if t.deprecated else t.description
        lines.append(f"| `{name}` | `{css_value(t)}` | `{d}` | {note} |")
    return "\n".join(lines) + "\n"


def render_api(spec: Mapping[str, Any], header: str) -> str:
    """The public API reference: operations marked ``x-internal`` are left out."""
    info = spec.get("info", {})
    lines = [
        f"<!-- {header} -->",
        f"# {info.get('title', 'API')} {info.get('version', '')}".rstrip(),
        "",
    ]
    for path, ops in sorted(spec.get("paths", {}).items()):
        for method, op in sorted(ops.items()):
            if not isinstance(op, Mapping) or op.get("x-internal"):
                continue
            lines += [f"## `{method.upper()} {path}`", "", op.get("summary", ""), ""]
    return "\n".join(lines)


def cms_entries(light: dict[str, Token], dark: dict[str, Token]) -> dict[str, bytes]:
    out = {}
    for name, t in light.items():
        if t.type != "color":
            continue
        body = {"name": name, "light": css_value(t), "dark": css_value(dark.get(name, t))}
        if t.deprecated:
            body["deprecated"] = t.deprecated
        out[f"token/{_ident(name, '-')}"] = json.dumps(body, sort_keys=True).encode()
    return out


def tarball(files: Mapping[str, bytes]) -> bytes:
    """A deterministic .tgz (fixed mtimes and owners, sorted members)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(f"package/{name}")
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    import gzip

    return gzip.compress(raw.getvalue(), mtime=0)
