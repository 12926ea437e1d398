"""TypeScript: the resolved DTCG values per theme, typed with the 2025.10 value shapes."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from spokehub.patterns.dtcg.resolve import Token
from spokehub.patterns.transforms.base import Output, RenderContext

__all__ = ["TypeScriptTransform"]

_TYPES = """export type ColorSpace = "srgb" | "srgb-linear" | "hsl" | "hwb" | "lab" | "lch"
  | "oklab" | "oklch" | "display-p3" | "a98-rgb" | "prophoto-rgb" | "rec2020"
  | "xyz-d65" | "xyz-d50";
export interface ColorValue { colorSpace: ColorSpace; components: (number | "none")[];
  alpha?: number; hex?: string }
export interface DimensionValue { value: number; unit: "px" | "rem" }
export interface DurationValue { value: number; unit: "ms" | "s" }
export type FontFamilyValue = string | string[];
export type FontWeightValue = number | string;
export type CubicBezierValue = [number, number, number, number];
export type StrokeStyleValue = string | { dashArray: DimensionValue[]; lineCap: string };
export interface BorderValue { color: ColorValue; width: DimensionValue;
  style: StrokeStyleValue }
export interface TransitionValue { duration: DurationValue; delay: DurationValue;
  timingFunction: CubicBezierValue }
export interface ShadowLayer { color: ColorValue; offsetX: DimensionValue;
  offsetY: DimensionValue; blur: DimensionValue; spread: DimensionValue; inset?: boolean }
export type ShadowValue = ShadowLayer | ShadowLayer[];
export type GradientValue = { color: ColorValue; position: number }[];
export interface TypographyValue { fontFamily: FontFamilyValue; fontSize: DimensionValue;
  fontWeight: FontWeightValue; letterSpacing: DimensionValue; lineHeight: number }"""

_TS_TYPE = {
    "color": "ColorValue",
    "dimension": "DimensionValue",
    "duration": "DurationValue",
    "fontFamily": "FontFamilyValue",
    "fontWeight": "FontWeightValue",
    "cubicBezier": "CubicBezierValue",
    "number": "number",
    "strokeStyle": "StrokeStyleValue",
    "border": "BorderValue",
    "transition": "TransitionValue",
    "shadow": "ShadowValue",
    "gradient": "GradientValue",
    "typography": "TypographyValue",
}


class TypeScriptTransform:
    id: ClassVar[str] = "ts"
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {"file": "tokens.ts"}

    def render(self, ctx: RenderContext) -> list[Output]:
        base = ctx.themes[0]
        lines = [f"// {h}" for h in ctx.header_lines()]
        lines += ["", _TYPES, "", "export interface Tokens {"]
        lines += [ctx.fragment(t, _field, "type") for t in base.changed]
        lines += ["}", ""]
        for theme in ctx.themes:
            full = theme.tokens.tokens
            label = _ident(theme)
            lines.append(f"export const {label}: Tokens = {{")
            lines += [
                ctx.fragment(full[n], _value, "value") for n in base.tokens.tokens if n in full
            ]
            lines += ["};", ""]
        themes = ", ".join(f"{json.dumps(t.label)}: {_ident(t)}" for t in ctx.themes)
        lines.append(f"export const themes: Record<string, Tokens> = {{ {themes} }};")
        names = tuple((t.name, t) for t in base.changed)
        return [Output(ctx.params["file"], "\n".join(lines) + "\n", names)]


def _ident(theme: Any) -> str:
    if theme.default:
        return "tokens"
    return "tokens_" + "_".join(
        "".join(c if c.isalnum() else "_" for c in v) for v in theme.inputs.values()
    )


def _field(token: Token) -> str:
    doc = ""
    if token.deprecated is not False:
        why = token.deprecated if isinstance(token.deprecated, str) else ""
        doc = f"  /** @deprecated {why} */\n".replace("*/ ", "* /")
    return f"{doc}  readonly {json.dumps(token.name)}: {_TS_TYPE.get(token.type or '', 'unknown')};"


def _value(token: Token) -> str:
    return f"  {json.dumps(token.name)}: {json.dumps(token.value, sort_keys=True)},"
