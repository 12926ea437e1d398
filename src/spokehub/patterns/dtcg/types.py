"""The 13 DTCG 2025.10 types and the shape of their values.

``check_value(type, value)`` returns every problem with a resolved value as ``(path, message)``
pairs (``path`` inside the value, for positions). Composite types name the type each of their
properties must have (``SLOT_TYPES``) so that a reference inside a composite can be checked
against the type of the token it points at.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "COLOR_SPACES",
    "FONT_WEIGHTS",
    "SLOT_TYPES",
    "STROKE_STYLES",
    "TYPES",
    "check_value",
]

Problems = list[tuple[tuple[str | int, ...], str]]

COLOR_SPACES: dict[str, list[tuple[float | None, float | None]]] = {
    # per component: (min, max) inclusive, None = unbounded (colour module 2025.10)
    "srgb": [(0, 1)] * 3,
    "srgb-linear": [(0, 1)] * 3,
    "display-p3": [(0, 1)] * 3,
    "a98-rgb": [(0, 1)] * 3,
    "prophoto-rgb": [(0, 1)] * 3,
    "rec2020": [(0, 1)] * 3,
    "hsl": [(0, 360), (0, 100), (0, 100)],
    "hwb": [(0, 360), (0, 100), (0, 100)],
    "lab": [(0, 100), (None, None), (None, None)],
    "lch": [(0, 100), (0, None), (0, 360)],
    "oklab": [(0, 1), (None, None), (None, None)],
    "oklch": [(0, 1), (0, None), (0, 360)],
    "xyz-d65": [(None, None)] * 3,
    "xyz-d50": [(None, None)] * 3,
}

FONT_WEIGHTS: dict[str, int] = {
    "thin": 100,
    "hairline": 100,
    "extra-light": 200,
    "ultra-light": 200,
    "light": 300,
    "normal": 400,
    "regular": 400,
    "book": 400,
    "medium": 500,
    "semi-bold": 600,
    "demi-bold": 600,
    "bold": 700,
    "extra-bold": 800,
    "ultra-bold": 800,
    "black": 900,
    "heavy": 900,
    "extra-black": 950,
    "ultra-black": 950,
}

STROKE_STYLES = ("solid", "dashed", "dotted", "double", "groove", "ridge", "outset", "inset")
LINE_CAPS = ("round", "butt", "square")

SLOT_TYPES: dict[str, dict[str, str]] = {
    "border": {"color": "color", "width": "dimension", "style": "strokeStyle"},
    "transition": {"duration": "duration", "delay": "duration", "timingFunction": "cubicBezier"},
    "shadow": {
        "color": "color",
        "offsetX": "dimension",
        "offsetY": "dimension",
        "blur": "dimension",
        "spread": "dimension",
    },
    "gradient": {"color": "color", "position": "number"},
    "typography": {
        "fontFamily": "fontFamily",
        "fontSize": "dimension",
        "fontWeight": "fontWeight",
        "letterSpacing": "dimension",
        "lineHeight": "number",
    },
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _object(value: Any, what: str, keys: dict[str, bool], out: Problems) -> bool:
    """Check an object's keys (name -> required); False when it is not an object."""
    if not isinstance(value, dict):
        out.append(((), f"a {what} value must be an object, got {_kind(value)}"))
        return False
    for key, required in keys.items():
        if required and key not in value:
            out.append(((), f"a {what} value needs the property {key!r}"))
    for key in value:
        if key not in keys:
            out.append(((key,), f"unknown property {key!r} in a {what} value"))
    return True


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"


def _color(value: Any, out: Problems) -> None:
    keys = {"colorSpace": True, "components": True, "alpha": False, "hex": False}
    if not _object(value, "color", keys, out):
        return
    space = value.get("colorSpace")
    if space not in COLOR_SPACES:
        out.append(
            (
                (("colorSpace",)),
                f"unknown colorSpace {space!r}; use one of " + ", ".join(COLOR_SPACES),
            )
        )
    components = value.get("components")
    if not isinstance(components, list) or len(components) != 3:
        out.append((("components",), "components must be an array of 3 numbers or 'none'"))
    elif space in COLOR_SPACES:
        for index, (comp, (low, high)) in enumerate(
            zip(components, COLOR_SPACES[space], strict=True)
        ):
            if comp == "none":
                continue
            if not _is_number(comp):
                out.append(
                    (
                        ("components", index),
                        f"component must be a number or 'none', got {_kind(comp)}",
                    )
                )
            elif (low is not None and comp < low) or (high is not None and comp > high):
                out.append(
                    (
                        ("components", index),
                        f"component {comp} is outside {space}'s "
                        f"range [{_bound(low)}, {_bound(high)}]",
                    )
                )
    alpha = value.get("alpha", 1)
    if not _is_number(alpha) or not 0 <= alpha <= 1:
        out.append((("alpha",), "alpha must be a number from 0 to 1"))
    hex_ = value.get("hex")
    if hex_ is not None and not (
        isinstance(hex_, str)
        and len(hex_) == 7
        and hex_[0] == "#"
        and all(c in "0123456789abcdefABCDEF" for c in hex_[1:])
    ):
        out.append((("hex",), "hex must be a 6-digit CSS hex colour like '#ff00ff'"))


def _bound(value: float | None) -> str:
    return "∞" if value is None else f"{value:g}"


def _unit_value(units: tuple[str, ...], what: str) -> Callable[[Any, Problems], None]:
    def check(value: Any, out: Problems) -> None:
        if not _object(value, what, {"value": True, "unit": True}, out):
            return
        if "value" in value and not _is_number(value["value"]):
            out.append((("value",), f"a {what}'s value must be a number"))
        if "unit" in value and value["unit"] not in units:
            out.append(
                (
                    ("unit",),
                    f"a {what}'s unit must be one of {', '.join(units)}, got {value['unit']!r}",
                )
            )

    return check


def _font_family(value: Any, out: Problems) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return
    out.append(((), "a fontFamily value must be a string or a non-empty array of strings"))


def _font_weight(value: Any, out: Problems) -> None:
    if _is_number(value):
        if not 1 <= value <= 1000:
            out.append(((), f"a numeric fontWeight must be from 1 to 1000, got {value}"))
    elif value not in FONT_WEIGHTS:
        out.append(
            (
                (),
                f"a fontWeight must be a number or one of the 2025.10 keywords, got {_kind(value)}",
            )
        )


def _cubic_bezier(value: Any, out: Problems) -> None:
    if not (isinstance(value, list) and len(value) == 4 and all(_is_number(v) for v in value)):
        out.append(((), "a cubicBezier value must be an array of 4 numbers [P1x, P1y, P2x, P2y]"))
        return
    for index in (0, 2):
        if not 0 <= value[index] <= 1:
            out.append(((index,), "the x coordinates of a cubicBezier must be from 0 to 1"))


def _number(value: Any, out: Problems) -> None:
    if not _is_number(value):
        out.append(((), f"a number value must be a number, got {_kind(value)}"))


def _stroke_style(value: Any, out: Problems) -> None:
    if isinstance(value, str):
        if value not in STROKE_STYLES:
            out.append(
                ((), f"unknown strokeStyle {value!r}; use one of " + ", ".join(STROKE_STYLES))
            )
        return
    if not _object(value, "strokeStyle", {"dashArray": True, "lineCap": True}, out):
        return
    dashes = value.get("dashArray")
    if not isinstance(dashes, list) or not dashes:
        out.append((("dashArray",), "dashArray must be a non-empty array of dimensions"))
    else:
        for index, item in enumerate(dashes):
            _sub(_unit_value(("px", "rem"), "dimension"), item, ("dashArray", index), out)
    if "lineCap" in value and value["lineCap"] not in LINE_CAPS:
        out.append((("lineCap",), "lineCap must be one of " + ", ".join(LINE_CAPS)))


def _sub(
    check: Callable[[Any, Problems], None], value: Any, at: tuple[str | int, ...], out: Problems
) -> None:
    inner: Problems = []
    check(value, inner)
    out.extend(((*at, *path), message) for path, message in inner)


def _composite(kind: str, optional: tuple[str, ...] = ()) -> Callable[[Any, Problems], None]:
    slots = SLOT_TYPES[kind]

    def check(value: Any, out: Problems) -> None:
        keys = {name: True for name in slots} | {name: False for name in optional}
        if not _object(value, kind, keys, out):
            return
        for name, slot_type in slots.items():
            if name in value:
                _sub(CHECKS[slot_type], value[name], (name,), out)
        if "inset" in value and not isinstance(value["inset"], bool):
            out.append((("inset",), "inset must be true or false"))

    return check


def _shadow(value: Any, out: Problems) -> None:
    single = _composite("shadow", ("inset",))
    if isinstance(value, list):
        if not value:
            out.append(((), "a shadow array must not be empty"))
        for index, item in enumerate(value):
            _sub(single, item, (index,), out)
    else:
        single(value, out)


def _gradient(value: Any, out: Problems) -> None:
    if not isinstance(value, list) or not value:
        out.append(((), "a gradient value must be a non-empty array of {color, position}"))
        return
    stop = _composite("gradient")
    for index, item in enumerate(value):
        _sub(stop, item, (index,), out)


CHECKS: dict[str, Callable[[Any, Problems], None]] = {
    "color": _color,
    "dimension": _unit_value(("px", "rem"), "dimension"),
    "duration": _unit_value(("ms", "s"), "duration"),
    "fontFamily": _font_family,
    "fontWeight": _font_weight,
    "cubicBezier": _cubic_bezier,
    "number": _number,
    "strokeStyle": _stroke_style,
    "border": _composite("border"),
    "transition": _composite("transition"),
    "shadow": _shadow,
    "gradient": _gradient,
    "typography": _composite("typography"),
}

TYPES = tuple(CHECKS)


def check_value(type_: str, value: Any) -> Problems:
    """Every problem with a resolved ``value`` of ``type_`` (empty when it is valid)."""
    out: Problems = []
    CHECKS[type_](value, out)
    return out
