"""Android resources: ``values/`` for the default theme and ``values-night/`` for the dark one.

Colours are ``#AARRGGBB`` (gamut-mapped into sRGB); dimensions ``dp``, or ``sp`` for tokens
whose path starts with one of ``spGroups`` (font sizes scale with the user's text size) and for
the font size of typography tokens; durations are integers in ms; font weights integers; other
scalars are strings or floats. Composite tokens are not expressible as a single resource: they
are listed in a comment and left out (use the typography/shadow parts as separate tokens).
"""

from __future__ import annotations

from typing import Any, ClassVar
from xml.sax.saxutils import escape

from spokehub.patterns.dtcg.colour import hex_rgb
from spokehub.patterns.dtcg.resolve import Token
from spokehub.patterns.dtcg.types import FONT_WEIGHTS
from spokehub.patterns.transforms.base import Output, RenderContext, Theme
from spokehub.patterns.transforms.values import css_value, kebab, num, px

__all__ = ["AndroidTransform"]

_COMPOSITES = ("border", "transition", "shadow", "gradient", "typography")


class AndroidTransform:
    id: ClassVar[str] = "android"
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {
        "remBase": 16,
        "night": "auto",
        "spGroups": ["font", "fontSize", "typography"],
    }

    def render(self, ctx: RenderContext) -> list[Output]:
        outputs = self._folder(ctx, "values", ctx.themes[0])
        night = self._night(ctx)
        if night is not None:
            outputs += self._folder(ctx, "values-night", night)
        return outputs

    def _night(self, ctx: RenderContext) -> Theme | None:
        wanted = ctx.params["night"]
        for theme in ctx.themes[1:]:
            extra = theme.non_default(ctx.defaults)
            label = ",".join(f"{k}={v}" for k, v in extra.items())
            if (wanted == "auto" and "dark" in extra.values()) or wanted == label:
                return theme
        return None

    def _folder(self, ctx: RenderContext, folder: str, theme: Theme) -> list[Output]:
        rem = float(ctx.params["remBase"])
        sp = tuple(ctx.params["spGroups"])
        files: dict[str, list[tuple[str, Token]]] = {"colors": [], "dimens": [], "tokens": []}
        skipped = []
        for token in theme.changed:
            if token.type in _COMPOSITES:
                skipped.append(token.name)
                continue
            kind = {"color": "colors", "dimension": "dimens"}.get(token.type or "", "tokens")
            files[kind].append((ctx.fragment(token, lambda t: _item(t, rem, sp)), token))
        out = []
        for kind, items in files.items():
            if not items and not (kind == "tokens" and skipped):
                continue
            lines = [
                '<?xml version="1.0" encoding="utf-8"?>',
                "<!--",
                *(f"  {escape(h)}" for h in ctx.header_lines()),
                "-->",
                "<resources>",
            ]
            if kind == "tokens" and skipped:
                lines.append(
                    f"  <!-- composite tokens not written: {escape(', '.join(skipped))} -->"
                )
            lines += [line for line, _ in items]
            lines.append("</resources>")
            names = tuple((_name(t), t) for _, t in items)
            out.append(Output(f"{folder}/{kind}.xml", "\n".join(lines) + "\n", names))
        return out


def _name(token: Token) -> str:
    name = kebab(token.path).replace("-", "_")
    return f"_{name}" if name[:1].isdigit() else name


def _item(token: Token, rem: float, sp: tuple[str, ...]) -> str:
    name = _name(token)
    v = token.value
    note = ""
    if token.deprecated is not False:
        why = token.deprecated if isinstance(token.deprecated, str) else "deprecated"
        note = f"  <!-- deprecated: {escape(why).replace('--', '- -')} -->\n"
    if token.type == "color":
        body = f'  <color name="{name}">{hex_rgb(v, alpha_first=True)}</color>'
    elif token.type == "dimension":
        unit = "sp" if token.path[0] in sp else "dp"
        body = f'  <dimen name="{name}">{num(px(v, rem))}{unit}</dimen>'
    elif token.type == "duration":
        ms = float(v["value"]) * (1 if v["unit"] == "ms" else 1000)
        body = f'  <integer name="{name}">{round(ms)}</integer>'
    elif token.type == "fontWeight":
        weight = FONT_WEIGHTS[v] if isinstance(v, str) else v
        body = f'  <integer name="{name}">{round(weight)}</integer>'
    elif token.type == "number":
        body = f'  <item name="{name}" format="float" type="dimen">{num(v)}</item>'
    else:
        text = css_value(token.type or "", v)
        body = f'  <string name="{name}" translatable="false">{escape(text)}</string>'
    return note + body
