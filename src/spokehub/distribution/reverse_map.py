"""From an edited rendered file back to the token source: which ``$value`` to change, and how.

Only where the mapping is well defined: files the patterns toolchain rendered from design
tokens as web CSS (``--name: value;`` in ``:root`` or a theme block), Android resources
(``values/`` and ``values-night/``) or content entries (``patterns.entries``, one value per
resolver permutation). The output name of each line is looked up in the build's own
``listing.json`` (the names the transforms gave, not re-derived here), the token's source file
and place come from the resolved token set, and the new text must parse as a value of the
token's type. The proposal is then checked by rebuilding the release with it: unless the
rebuilt file is the edited one (ignoring the source digest in its header), it is refused.
Anything else — a structural edit, an alias edited as a value, a Swift or Markdown file — is
``Unmappable`` with the reason.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spokehub.distribution.manifests import Manifest
from spokehub.distribution.toolchain import PatternsSource
from spokehub.distribution.wiring import DistContext, target_view


class Unmappable(Exception):
    """The edit has no well-defined token source change; ``str(exc)`` says why."""


@dataclass(frozen=True, slots=True)
class TokenEdit:
    token: str
    output_name: str
    theme: str
    file: str  # relative to the release folder
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "name": self.output_name,
            "theme": self.theme,
            "file": self.file,
            "before": self.before,
            "after": self.after,
        }


@dataclass(slots=True)
class SourceChange:
    """New texts of token files of the release (``files``: path -> (old text, new text))."""

    release_dir: Path
    edits: list[TokenEdit] = field(default_factory=list)
    files: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(slots=True)
class _Located:
    kind: str  # css | android | entries
    pattern: Any
    rel: str  # the path inside the build (css/android)
    names: dict[str, str]  # output name -> token name
    css_params: dict[str, Any] = field(default_factory=dict)


_SOURCE_NOTE = re.compile(r"\(source sha256:[0-9a-f]+\)")
_CSS_DECL = re.compile(r"^\s*(--[A-Za-z0-9_-]+):\s*(.*?);(.*)$")
_CSS_OPEN = re.compile(r"^(\S.*?)\s*\{$")
_XML_ITEM = re.compile(r'^(\s*<(\w+) name="([^"]+)"[^>]*>)(.*?)(</\2>.*)$')
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def reverse(
    ctx: DistContext,
    target: Manifest,
    release: str,
    key: str,
    expected: bytes | None,
    actual: bytes | None,
) -> SourceChange:
    """The source change that reproduces ``actual`` (the target's edit of ``key``)."""
    src = ctx.source
    if not isinstance(src, PatternsSource):
        raise Unmappable("the distribution's source is not the patterns toolchain")
    if not release:
        raise Unmappable("the target has no release recorded, so there is no source to change")
    if expected is None or actual is None:
        raise Unmappable("the resource is missing, or spokehub no longer has what it applied")
    from spokehub.patterns import load_hub

    folder = src.base / release
    hub = load_hub(folder)
    located = _locate(src, hub, ctx.transforms_for(target), key)
    before, after = _values(located, expected, actual)
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    if not changed:
        raise Unmappable("the edit changes no token value (comments or layout only)")
    change = SourceChange(folder)
    planned: dict[tuple[str, tuple[str, ...]], Any] = {}
    for (theme, name), text in sorted(changed.items()):
        _plan_edit(located, theme, name, text, planned, change)
    for (file, path), value in planned.items():
        old, new = change.files.get(file) or (_read(folder / file),) * 2
        change.files[file] = (old, _set_value(new, file, path, value))
    _verify(ctx, target, release, key, change, actual)
    return change


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _locate(src: PatternsSource, hub: Any, steps: Any, key: str) -> _Located:
    reasons = []
    for step in steps:
        params = step.params
        if step.use == "patterns.build" and key.startswith(str(params.get("into", ""))):
            platform = params["platform"]
            if platform not in ("css", "android"):
                reasons.append(f"{platform} output is not mapped back to tokens")
                continue
            rel = key[len(str(params.get("into", ""))) :]
            for pattern in _token_patterns(hub, params):
                result = src.build(pattern, platform, params.get("params"))
                if rel in result.files:
                    listing = json.loads(result.files["listing.json"])["outputs"][rel]["names"]
                    names = {n: str(v["token"]) for n, v in listing.items()}
                    css = {**_css_defaults(), **pattern.manifest.platforms.get("css", {})}
                    css.update(params.get("params") or {})
                    return _Located(platform, pattern, rel, names, css)
        elif step.use == "patterns.entries" and key.startswith(str(params.get("prefix", "token/"))):
            patterns = _token_patterns(hub, params)
            if patterns:
                return _Located("entries", patterns[0], key, {})
    why = "; ".join(reasons) or "no transform of the target renders it from design tokens"
    raise Unmappable(why)


def _css_defaults() -> dict[str, Any]:
    from spokehub.patterns.transforms.css import CssTransform

    return dict(CssTransform.defaults)


def _token_patterns(hub: Any, params: Mapping[str, Any]) -> list[Any]:
    if "pattern" in params:
        return [hub.get(params["pattern"])]
    return [p for _, p in sorted(hub.patterns.items()) if p.manifest.kind == "design-tokens"]


def _values(loc: _Located, expected: bytes, actual: bytes) -> tuple[dict[Any, str], dict[Any, str]]:
    """Both versions as {(theme label, output name): value text}; refuses structural edits."""
    if loc.kind == "entries":
        return _entry_values(expected), _entry_values(actual, like=expected)
    parse = _css_values if loc.kind == "css" else _xml_values
    (b, b_shape), (a, a_shape) = parse(_text(expected), loc), parse(_text(actual), loc)
    if b_shape != a_shape or set(b) != set(a):
        raise Unmappable("a structural edit (lines or names added, removed or changed)")
    return b, a


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Unmappable("the file is not UTF-8 text") from None


def _css_values(text: str, loc: _Located) -> tuple[dict[Any, str], list[str]]:
    values: dict[Any, str] = {}
    shape: list[str] = []
    selector = ""
    for line in text.splitlines():
        opened = _CSS_OPEN.match(line)
        decl = _CSS_DECL.match(line)
        if opened:
            selector = opened.group(1)
        elif line.strip() == "}":
            selector = ""
        if decl and selector:
            values[(selector, decl.group(1))] = decl.group(2).strip()
            shape.append(f"{selector}|{decl.group(1)}|{decl.group(3)}")
        else:
            shape.append(_SOURCE_NOTE.sub("(source)", line))
    return values, shape


def _xml_values(text: str, loc: _Located) -> tuple[dict[Any, str], list[str]]:
    folder = loc.rel.split("/", 1)[0]
    values: dict[Any, str] = {}
    shape: list[str] = []
    for line in text.splitlines():
        item = _XML_ITEM.match(line)
        if item:
            values[(folder, item.group(3))] = item.group(4)
            shape.append(item.group(1) + item.group(5))
        else:
            shape.append(_SOURCE_NOTE.sub("(source)", line))
    return values, shape


def _entry_values(data: bytes, like: bytes | None = None) -> dict[Any, str]:
    try:
        body = json.loads(data)
        base = json.loads(like) if like is not None else body
    except ValueError:
        raise Unmappable("the entry is not JSON any more") from None
    if not isinstance(body, dict) or set(body) != set(base) or body.get("name") != base["name"]:
        raise Unmappable("a structural edit of the entry (fields added, removed or renamed)")
    token = str(base["name"])
    return {
        (label, token): str(value)
        for label, value in body.items()
        if label not in ("name", "deprecated")
    }


def _theme_index(loc: _Located, theme: str, perms: list[Any]) -> int:
    """Which resolver permutation a CSS selector, Android folder or entry label shows."""
    defaults = perms[0][0]
    for i, (inputs, _) in enumerate(perms):
        extra = {k: v for k, v in inputs.items() if defaults.get(k) != v}
        if loc.kind == "entries":
            label = "-".join(inputs.values()) or "value"
        elif loc.kind == "android":
            label = "values" if i == 0 else ("values-night" if "dark" in extra.values() else "")
        else:
            fmt = loc.css_params["selector"]
            label = (
                ":root"
                if i == 0
                else "".join(fmt.format(modifier=k, context=v) for k, v in extra.items())
            )
        if label == theme:
            return i
    raise Unmappable(f"{theme!r} is not a theme of the pattern")


def _plan_edit(
    loc: _Located,
    theme: str,
    name: str,
    text: str,
    planned: dict[tuple[str, tuple[str, ...]], Any],
    change: SourceChange,
) -> None:
    perms = loc.pattern.token_sets()
    tokens = perms[_theme_index(loc, theme, perms)][1].tokens
    token_name = name if loc.kind == "entries" else loc.names.get(name)
    token = tokens.get(token_name) if token_name else None
    if token is None:
        raise Unmappable(f"{name} names no token of the release")
    value = _parse(loc, token, text)
    if token.alias_of and not (isinstance(value, str) and value.startswith("{")):
        raise Unmappable(
            f"{token.name} is an alias of {token.alias_of} in the source: change "
            f"{token.alias_of}, or the alias, by hand"
        )
    file = str(token.position.file)
    spot = (file, tuple(token.path))
    if spot in planned and planned[spot] != value:
        raise Unmappable(f"two edits give {token.name} different values in {file}")
    planned[spot] = value
    change.edits.append(TokenEdit(token.name, name, theme, file, token.raw, value))


def _parse(loc: _Located, token: Any, text: str) -> Any:
    """``text`` as a DTCG value of the token's type, or Unmappable."""
    kind = str(token.type or "")
    alias = re.fullmatch(r"var\((--[A-Za-z0-9_-]+)\)", text) if loc.kind == "css" else None
    if alias:
        target = loc.names.get(alias.group(1))
        if target is None:
            raise Unmappable(f"{text} names no token of the release")
        return "{" + target + "}"
    try:
        if kind == "color":
            return _colour(text, token.raw, android=loc.kind == "android")
        if kind in ("dimension", "duration"):
            return _measure(text, kind, loc.kind == "android")
        if kind == "number" and _NUMBER.match(text):
            return _number(text)
    except ValueError:
        pass
    raise Unmappable(f"{text!r} is not a {kind or 'typed'} value spokehub can write back")


def _number(text: str) -> float | int:
    number = float(text)
    return int(number) if number.is_integer() else number


def _colour(text: str, old: Any, *, android: bool) -> dict[str, Any]:
    from spokehub.patterns.dtcg.colour import hex_rgb, parse_css_color

    if android:
        if not re.fullmatch(r"#[0-9A-Fa-f]{8}", text):
            raise ValueError(text)
        text = f"#{text[3:]}{text[1:3]}"  # #AARRGGBB -> #RRGGBBAA
    r, g, b, a = parse_css_color(text)
    value: dict[str, Any] = {"colorSpace": "srgb", "components": [round(c, 4) for c in (r, g, b)]}
    if a < 1:
        value["alpha"] = round(a, 4)
    if isinstance(old, dict) and "hex" in old:
        value["hex"] = hex_rgb(value)[:7].upper()
    return value


def _measure(text: str, kind: str, android: bool) -> dict[str, Any]:
    units = ("ms", "s") if kind == "duration" else (("dp", "sp") if android else ("px", "rem"))
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)([a-z]+)", text)
    if m is None or m.group(2) not in units:
        raise ValueError(text)
    unit = "px" if m.group(2) in ("dp", "sp") else m.group(2)
    return {"value": _number(m.group(1)), "unit": unit}


def _set_value(text: str, file: str, path: tuple[str, ...], value: Any) -> str:
    """``text`` with only the token's ``$value`` replaced (the rest of the file byte for byte)."""
    from spokehub.patterns.source import load_json

    doc = load_json(text, file)
    at = doc.positions.get((*path, "$value"))
    if at is None:
        raise Unmappable(f"{'.'.join(path)} has no $value written in {file}")
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    key_at = starts[at[0] - 1] + at[1] - 1
    colon = text.index(":", key_at + len('"$value"'))
    begin = colon + 1
    while text[begin] in " \t\r\n":
        begin += 1
    _, end = json.JSONDecoder().raw_decode(text, begin)
    old = text[begin:end]
    if "\n" in old:
        indent = text[starts[at[0] - 1] : key_at]
        rendered = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + indent)
    else:
        rendered = json.dumps(value, ensure_ascii=False)
    return text[:begin] + rendered + text[end:]


def _verify(
    ctx: DistContext,
    target: Manifest,
    release: str,
    key: str,
    change: SourceChange,
    actual: bytes,
) -> None:
    """Rebuild the release with the change; it must give the edited file back."""
    with tempfile.TemporaryDirectory(prefix="spokehub-adopt-") as tmp:
        copy = Path(tmp) / "releases" / release
        shutil.copytree(change.release_dir, copy)
        for file, (_, new) in change.files.items():
            (copy / file).write_text(new, encoding="utf-8")
        try:
            rendered = PatternsSource(Path(tmp)).render(
                release, target_view(target), ctx.transforms_for(target)
            )
        except Exception as exc:  # an invalid source after the change
            raise Unmappable(f"the release does not build with the change: {exc}") from exc
    data = rendered.get(key)
    if data is None:
        raise Unmappable("the rebuilt release no longer has the file")
    data = ctx.adapter(target.name).canonicalize(key, data)
    if _same(data, actual):
        return
    raise Unmappable("rebuilding the release with the new token values does not give the edit")


def _same(rebuilt: bytes, actual: bytes) -> bool:
    try:
        a, b = json.loads(rebuilt), json.loads(actual)
        return bool(a == b)
    except ValueError:
        pass
    norm = [_SOURCE_NOTE.sub("(source)", x.decode("utf-8", "replace")) for x in (rebuilt, actual)]
    return norm[0] == norm[1]
