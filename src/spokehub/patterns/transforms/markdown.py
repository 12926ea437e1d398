"""Markdown documentation: one table per type, colour swatches, deprecation badges, themes."""

from __future__ import annotations

from typing import Any, ClassVar

from spokehub.patterns.dtcg.colour import hex_rgb
from spokehub.patterns.dtcg.resolve import Token
from spokehub.patterns.transforms.base import Output, RenderContext
from spokehub.patterns.transforms.values import css_value

__all__ = ["MarkdownTransform"]


class MarkdownTransform:
    id: ClassVar[str] = "markdown"
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {"file": "tokens.md", "title": None}

    def render(self, ctx: RenderContext) -> list[Output]:
        title = ctx.params["title"] or f"Design tokens: {ctx.pattern_id}"
        lines = [
            "<!--",
            *ctx.header_lines(),
            "-->",
            "",
            f"# {title}",
            "",
            f"Version {ctx.version}.",
        ]
        for theme in ctx.themes:
            heading = "Default theme" if theme.default else f"Theme {theme.label}"
            lines += ["", f"## {heading}"]
            if not theme.default:
                lines += ["", "Only the tokens whose value differs from the default theme."]
            by_type: dict[str, list[Token]] = {}
            for token in theme.changed:
                by_type.setdefault(token.type or "", []).append(token)
            for type_ in sorted(by_type):
                lines += [
                    "",
                    f"### {type_}",
                    "",
                    "| Token | Value | Preview | Description |",
                    "|---|---|---|---|",
                ]
                lines += [ctx.fragment(t, _row, "row") for t in by_type[type_]]
        names = tuple((t.name, t) for t in ctx.themes[0].changed)
        return [Output(ctx.params["file"], "\n".join(lines) + "\n", names)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(token: Token) -> str:
    value = css_value(token.type or "", token.value)
    swatch = ""
    if token.type == "color":
        swatch = (
            f'<span style="display:inline-block;width:1.5em;height:1.5em;'
            f'border:1px solid #888;background:{hex_rgb(token.value)}"></span>'
        )
    name = f"`{token.name}`"
    if token.alias_of:
        name += f" → `{token.alias_of}`"
    if token.deprecated is not False:
        why = f": {token.deprecated}" if isinstance(token.deprecated, str) else ""
        name += f" **deprecated{_cell(why)}**"
    return f"| {name} | `{_cell(value)}` | {swatch} | {_cell(token.description or '')} |"
