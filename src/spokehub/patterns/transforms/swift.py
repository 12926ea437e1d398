"""SwiftUI: ``public enum DesignTokens`` with static constants; other themes as nested enums.

Colours become ``Color(.sRGB, ...)`` (or ``.displayP3`` for Display P3 sources), gamut-mapped
into sRGB when needed; dimensions are points (``CGFloat``; rem times ``remBase``); durations
``TimeInterval`` seconds; composites are small structs declared at the top of the file.
Deprecated tokens get ``@available(*, deprecated, message: ...)``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from spokehub.patterns.dtcg.colour import srgb
from spokehub.patterns.dtcg.resolve import Token
from spokehub.patterns.dtcg.types import FONT_WEIGHTS
from spokehub.patterns.transforms.base import Output, RenderContext
from spokehub.patterns.transforms.values import camel, num, px

__all__ = ["SwiftTransform"]

_STRUCTS = """public struct TokenShadow { public let color: Color; public let x: CGFloat;
    public let y: CGFloat; public let blur: CGFloat; public let spread: CGFloat;
    public let inset: Bool }
public struct TokenBorder { public let color: Color; public let width: CGFloat;
    public let style: String }
public struct TokenTransition { public let duration: TimeInterval; public let delay: TimeInterval;
    public let timingFunction: [Double] }
public struct TokenGradientStop { public let color: Color; public let position: Double }
public struct TokenTypography { public let fontFamily: [String]; public let fontSize: CGFloat;
    public let fontWeight: Double; public let letterSpacing: CGFloat;
    public let lineHeight: Double }"""


class SwiftTransform:
    id: ClassVar[str] = "swift"
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {
        "remBase": 16,
        "name": "DesignTokens",
        "file": "DesignTokens.swift",
    }

    def render(self, ctx: RenderContext) -> list[Output]:
        rem = float(ctx.params["remBase"])
        lines = [f"// {h}" for h in ctx.header_lines()]
        lines += ["", "import SwiftUI", "", _STRUCTS, "", f"public enum {ctx.params['name']} {{"]
        base = ctx.themes[0]
        lines += [ctx.fragment(t, lambda t: _decl(t, rem, "    ")) for t in base.changed]
        for theme in ctx.themes[1:]:
            label = "".join(
                v[:1].upper() + camel((v,))[1:] for v in theme.non_default(ctx.defaults).values()
            )
            lines += ["", f"    public enum {label or 'Default'} {{"]
            lines += [
                ctx.fragment(t, lambda t: _decl(t, rem, "        "), "nested")
                for t in theme.changed
            ]
            lines.append("    }")
        lines.append("}")
        names = tuple((camel(t.path), t) for t in base.changed)
        return [Output(ctx.params["file"], "\n".join(lines) + "\n", names)]


def _color(value: dict[str, Any]) -> str:
    if value["colorSpace"] == "display-p3" and "none" not in value["components"]:
        r, g, b = value["components"]
        return (
            f"Color(.displayP3, red: {num(r)}, green: {num(g)}, blue: {num(b)}, "
            f"opacity: {num(value.get('alpha', 1))})"
        )
    r, g, b, a = srgb(value)
    return f"Color(.sRGB, red: {num(r)}, green: {num(g)}, blue: {num(b)}, opacity: {num(a)})"


def _seconds(duration: dict[str, Any]) -> str:
    value = float(duration["value"]) / (1000 if duration["unit"] == "ms" else 1)
    return num(value)


def _weight(value: Any) -> str:
    return num(FONT_WEIGHTS[value] if isinstance(value, str) else value)


def _families(value: Any) -> str:
    return json.dumps([value] if isinstance(value, str) else value)


def _shadow(s: dict[str, Any], rem: float) -> str:
    return (
        f"TokenShadow(color: {_color(s['color'])}, x: {num(px(s['offsetX'], rem))}, "
        f"y: {num(px(s['offsetY'], rem))}, blur: {num(px(s['blur'], rem))}, "
        f"spread: {num(px(s['spread'], rem))}, inset: {str(bool(s.get('inset'))).lower()})"
    )


def _expr(type_: str, v: Any, rem: float) -> tuple[str, str]:  # noqa: C901 - one case per type
    if type_ == "color":
        return "Color", _color(v)
    if type_ == "dimension":
        return "CGFloat", num(px(v, rem))
    if type_ == "duration":
        return "TimeInterval", _seconds(v)
    if type_ == "number":
        return "Double", num(v)
    if type_ == "fontWeight":
        return "Double", _weight(v)
    if type_ == "fontFamily":
        return "[String]", _families(v)
    if type_ == "cubicBezier":
        return "[Double]", "[" + ", ".join(num(x) for x in v) + "]"
    if type_ == "strokeStyle":
        return "String", json.dumps(v if isinstance(v, str) else "dashed")
    if type_ == "border":
        return "TokenBorder", (
            f"TokenBorder(color: {_color(v['color'])}, width: "
            f"{num(px(v['width'], rem))}, style: "
            f"{json.dumps(v['style'] if isinstance(v['style'], str) else 'dashed')})"
        )
    if type_ == "transition":
        return "TokenTransition", (
            f"TokenTransition(duration: {_seconds(v['duration'])}, "
            f"delay: {_seconds(v['delay'])}, timingFunction: "
            f"[{', '.join(num(x) for x in v['timingFunction'])}])"
        )
    if type_ == "shadow":
        items = v if isinstance(v, list) else [v]
        return "[TokenShadow]", "[" + ", ".join(_shadow(s, rem) for s in items) + "]"
    if type_ == "gradient":
        stops = ", ".join(
            f"TokenGradientStop(color: {_color(s['color'])}, position: {num(s['position'])})"
            for s in v
        )
        return "[TokenGradientStop]", f"[{stops}]"
    return "TokenTypography", (
        f"TokenTypography(fontFamily: {_families(v['fontFamily'])}, "
        f"fontSize: {num(px(v['fontSize'], rem))}, fontWeight: "
        f"{_weight(v['fontWeight'])}, letterSpacing: "
        f"{num(px(v['letterSpacing'], rem))}, lineHeight: "
        f"{num(v['lineHeight'])})"
    )


def _decl(token: Token, rem: float, indent: str) -> str:
    swift_type, expr = _expr(token.type or "", token.value, rem)
    lines = []
    if token.description:
        lines.append(f"{indent}/// {' '.join(token.description.split())}")
    if token.deprecated is not False:
        why = token.deprecated if isinstance(token.deprecated, str) else "deprecated"
        lines.append(f"{indent}@available(*, deprecated, message: {json.dumps(why)})")
    lines.append(f"{indent}public static let {camel(token.path)}: {swift_type} = {expr}")
    return "\n".join(lines)
