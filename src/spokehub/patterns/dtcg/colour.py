"""Colour conversions and gamut mapping through ``coloraide``.

DTCG colour objects name a colour space and its components; CSS can print every one of the 14
spaces natively, but Swift and Android need sRGB, so colours outside the sRGB gamut are mapped
into it with CSS Color 4's OkLCh chroma reduction (what browsers do), never clipped.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

__all__ = ["css_color", "hex_rgb", "parse_css_color", "srgb"]

# DTCG space name -> coloraide space id, and the factor from DTCG to coloraide's component range
_SPACES: dict[str, tuple[str, tuple[float, float, float]]] = {
    "srgb": ("srgb", (1, 1, 1)),
    "srgb-linear": ("srgb-linear", (1, 1, 1)),
    "display-p3": ("display-p3", (1, 1, 1)),
    "a98-rgb": ("a98-rgb", (1, 1, 1)),
    "prophoto-rgb": ("prophoto-rgb", (1, 1, 1)),
    "rec2020": ("rec2020", (1, 1, 1)),
    "hsl": ("hsl", (1, 0.01, 0.01)),
    "hwb": ("hwb", (1, 0.01, 0.01)),
    "lab": ("lab", (1, 1, 1)),
    "lch": ("lch", (1, 1, 1)),
    "oklab": ("oklab", (1, 1, 1)),
    "oklch": ("oklch", (1, 1, 1)),
    "xyz-d65": ("xyz-d65", (1, 1, 1)),
    "xyz-d50": ("xyz-d50", (1, 1, 1)),
}


def _key(value: dict[str, Any]) -> tuple[Any, ...]:
    return (value["colorSpace"], tuple(value["components"]), value.get("alpha", 1))


def _color(key: tuple[Any, ...]) -> Any:
    from coloraide import Color

    space, components, alpha = key
    ident, factors = _SPACES[space]
    coords = [math.nan if c == "none" else c * f for c, f in zip(components, factors, strict=True)]
    return Color(ident, coords, alpha)


@lru_cache(maxsize=65536)
def _srgb(key: tuple[Any, ...]) -> tuple[float, float, float, float]:
    color = _color(key)
    if key[0] != "srgb" or not color.in_gamut("srgb"):
        color = color.convert("srgb")
        if not color.in_gamut("srgb"):
            color = color.fit("srgb", method="oklch-chroma")
    r, g, b = (0.0 if math.isnan(c) else min(1.0, max(0.0, c)) for c in color.coords())
    return r, g, b, float(color.alpha())


def srgb(value: dict[str, Any]) -> tuple[float, float, float, float]:
    """sRGB components and alpha (0-1) of a DTCG colour, gamut-mapped when needed."""
    return _srgb(_key(value))


def hex_rgb(value: dict[str, Any], *, alpha_first: bool = False) -> str:
    """``#rrggbb`` (``#rrggbbaa``, or ``#AARRGGBB`` with ``alpha_first``) of a colour."""
    r, g, b, a = srgb(value)
    rgb = "".join(f"{round(c * 255):02x}" for c in (r, g, b))
    if alpha_first:
        return f"#{round(a * 255):02X}{rgb.upper()}"
    return f"#{rgb}" if a >= 1 else f"#{rgb}{round(a * 255):02x}"


@lru_cache(maxsize=65536)
def _css(key: tuple[Any, ...]) -> str:
    space = key[0]
    if space == "srgb" and "none" not in key[1]:
        return hex_rgb({"colorSpace": space, "components": list(key[1]), "alpha": key[2]})
    return str(_color(key).to_string(precision=5, none=True))


def css_color(value: dict[str, Any]) -> str:
    """The colour in CSS: hex for sRGB, the space's own CSS Color 4 syntax otherwise."""
    return _css(_key(value))


def parse_css_color(text: str) -> tuple[float, float, float, float]:
    """sRGB components and alpha (gamut-mapped) of any CSS colour string (to compare outputs)."""
    from coloraide import Color

    color = Color(text).convert("srgb")
    if not color.in_gamut("srgb"):
        color = color.fit("srgb", method="oklch-chroma")
    r, g, b = (0.0 if math.isnan(c) else c for c in color.coords())
    return r, g, b, float(color.alpha())
