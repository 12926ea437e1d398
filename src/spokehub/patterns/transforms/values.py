"""Platform-neutral helpers: number formatting, token names, value rendering for CSS."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from spokehub.patterns.dtcg.colour import css_color
from spokehub.patterns.dtcg.types import FONT_WEIGHTS

__all__ = ["camel", "css_value", "kebab", "num", "px"]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^A-Za-z0-9]+")


def num(value: float) -> str:
    """A number in the shortest stable form (at most 4 decimals, no trailing zeros)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = f"{round(float(value), 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _segments(path: tuple[str, ...]) -> list[str]:
    parts = [p for p in path if p != "$root"]
    out: list[str] = []
    for part in parts:
        out.extend(w for w in _NON_WORD.split(_CAMEL.sub("-", part)) if w)
    return out


@lru_cache(maxsize=1 << 16)
def kebab(path: tuple[str, ...]) -> str:
    """``color.blue.600`` -> ``color-blue-600``; ``fontSize`` -> ``font-size``."""
    return "-".join(s.lower() for s in _segments(path))


@lru_cache(maxsize=1 << 16)
def camel(path: tuple[str, ...]) -> str:
    """``color.blue.600`` -> ``colorBlue600`` (prefixed with ``_`` if it starts with a digit)."""
    words = _segments(path)
    text = "".join(
        w.lower() if i == 0 else w[:1].upper() + w[1:].lower() for i, w in enumerate(words)
    )
    return f"_{text}" if text[:1].isdigit() else text or "_"


def px(dimension: dict[str, Any], rem_base: float = 16) -> float:
    """A dimension in px (rem multiplied by ``rem_base``)."""
    factor = rem_base if dimension["unit"] == "rem" else 1
    return float(dimension["value"]) * factor


def _font_family(value: Any) -> str:
    names = [value] if isinstance(value, str) else value
    return ", ".join(json.dumps(n) if " " in n else n for n in names)


def _font_weight(value: Any) -> str:
    return num(FONT_WEIGHTS[value]) if isinstance(value, str) else num(value)


def _unit(value: dict[str, Any]) -> str:
    return f"{num(value['value'])}{value['unit']}"


def _shadow(value: Any) -> str:
    items = value if isinstance(value, list) else [value]
    parts = []
    for s in items:
        dims = " ".join(_unit(s[k]) for k in ("offsetX", "offsetY", "blur", "spread"))
        parts.append(f"{'inset ' if s.get('inset') else ''}{dims} {css_color(s['color'])}")
    return ", ".join(parts)


def css_value(type_: str, value: Any) -> str:  # noqa: C901 - one branch per DTCG type
    """A resolved DTCG value as a CSS value."""
    if type_ == "color":
        return css_color(value)
    if type_ in ("dimension", "duration"):
        return _unit(value)
    if type_ == "number":
        return num(value)
    if type_ == "fontFamily":
        return _font_family(value)
    if type_ == "fontWeight":
        return _font_weight(value)
    if type_ == "cubicBezier":
        return f"cubic-bezier({', '.join(num(v) for v in value)})"
    if type_ == "strokeStyle":
        return value if isinstance(value, str) else "dashed"  # CSS has no dash arrays
    if type_ == "border":
        return (
            f"{_unit(value['width'])} {css_value('strokeStyle', value['style'])} "
            f"{css_color(value['color'])}"
        )
    if type_ == "transition":
        return (
            f"{_unit(value['duration'])} {css_value('cubicBezier', value['timingFunction'])} "
            f"{_unit(value['delay'])}"
        )
    if type_ == "shadow":
        return _shadow(value)
    if type_ == "gradient":
        stops = ", ".join(f"{css_color(s['color'])} {num(s['position'] * 100)}%" for s in value)
        return f"linear-gradient(90deg, {stops})"
    if type_ == "typography":
        return (
            f"{_font_weight(value['fontWeight'])} {_unit(value['fontSize'])}/"
            f"{num(value['lineHeight'])} {_font_family(value['fontFamily'])}"
        )
    raise ValueError(f"unknown type {type_!r}")
