"""SCSS variables (aliases as ``$other``) and one map per non-default theme."""

from __future__ import annotations

from typing import Any, ClassVar

from spokehub.patterns.dtcg.resolve import Token
from spokehub.patterns.transforms.base import Output, RenderContext
from spokehub.patterns.transforms.values import css_value, kebab

__all__ = ["ScssTransform"]


class ScssTransform:
    id: ClassVar[str] = "scss"
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {"outputReferences": True, "file": "_tokens.scss"}

    def render(self, ctx: RenderContext) -> list[Output]:
        refs = bool(ctx.params["outputReferences"])
        lines = [f"// {h}" for h in ctx.header_lines()]
        base = ctx.themes[0]
        known = set(base.tokens.tokens)
        lines.append("")
        lines += [ctx.fragment(t, lambda t: _line(t, refs, known)) for t in base.changed]
        for theme in ctx.themes[1:]:
            label = "-".join(f"{v}" for v in theme.non_default(ctx.defaults).values())
            lines += ["", f"$theme-{label}: ("]
            lines += [ctx.fragment(t, _entry, "map") for t in theme.changed]
            lines.append(");")
        names = tuple((f"${kebab(t.path)}", t) for t in base.changed)
        return [Output(ctx.params["file"], "\n".join(lines) + "\n", names)]


def _line(token: Token, refs: bool, known: set[str]) -> str:
    if refs and token.alias_of in known:
        value = f"${kebab(tuple(str(token.alias_of).split('.')))}"
    else:
        value = css_value(token.type or "", token.value)
    note = f" // deprecated: {token.deprecated}" if token.deprecated is not False else ""
    return f"${kebab(token.path)}: {value};{note}"


def _entry(token: Token) -> str:
    return f'  "{kebab(token.path)}": {css_value(token.type or "", token.value)},'
