"""CSS custom properties: ``:root`` for the default theme, one selector per other theme.

Aliases stay aliases (``--color-bg: var(--color-gray-200);``) unless ``outputReferences`` is
off; references inside composites become ``var()`` too. A theme block repeats every token whose
written or resolved value differs from the default theme, so an alias whose target changes per
theme is recomputed on the themed element. Deprecated tokens carry a comment.
"""

from __future__ import annotations

from typing import Any, ClassVar

from spokehub.patterns.dtcg.resolve import ALIAS, Token
from spokehub.patterns.dtcg.types import SLOT_TYPES
from spokehub.patterns.transforms.base import Output, RenderContext
from spokehub.patterns.transforms.values import css_value, kebab

__all__ = ["CssTransform"]


class CssTransform:
    id: ClassVar[str] = "css"
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {
        "selector": "[data-{modifier}='{context}']",
        "outputReferences": True,
        "prefix": "",
        "file": "tokens.css",
    }

    def render(self, ctx: RenderContext) -> list[Output]:
        prefix = ctx.params["prefix"]
        refs = bool(ctx.params["outputReferences"])
        lines = ["/*", *(f" * {h}" for h in ctx.header_lines()), " */"]
        names: list[tuple[str, Any]] = []
        for theme in ctx.themes:
            if theme.default:
                selector = ":root"
            else:
                extra = theme.non_default(ctx.defaults)
                selector = "".join(
                    ctx.params["selector"].format(modifier=k, context=v) for k, v in extra.items()
                )
            body = [ctx.fragment(t, lambda t: _line(t, prefix, refs)) for t in theme.changed]
            if not body:
                continue
            lines += ["", f"{selector} {{", *body, "}"]
            names += [(f"--{prefix}{kebab(t.path)}", t) for t in theme.changed if theme.default]
        return [Output(ctx.params["file"], "\n".join(lines) + "\n", tuple(names))]


def _var(raw: Any, prefix: str) -> str | None:
    m = ALIAS.match(raw) if isinstance(raw, str) else None
    return f"var(--{prefix}{kebab(tuple(m.group(1).split('.')))})" if m else None


def _composite(token: Token, prefix: str) -> str | None:
    """A composite whose properties reference tokens, written with var() for those parts."""
    slots = SLOT_TYPES.get(token.type or "")
    raw = token.raw
    if slots is None or not isinstance(raw, dict) or token.type in ("gradient", "shadow"):
        return None
    parts = {k: _var(v, prefix) for k, v in raw.items()}
    if not any(parts.values()):
        return None
    value = token.value

    def part(key: str, type_: str) -> str:
        return parts.get(key) or css_value(type_, value[key])

    if token.type == "border":
        return (
            f"{part('width', 'dimension')} {part('style', 'strokeStyle')} {part('color', 'color')}"
        )
    if token.type == "transition":
        return (
            f"{part('duration', 'duration')} {part('timingFunction', 'cubicBezier')} "
            f"{part('delay', 'duration')}"
        )
    return None


def _line(token: Token, prefix: str, refs: bool) -> str:
    name = f"--{prefix}{kebab(token.path)}"
    value = None
    if refs:
        value = (
            f"var(--{prefix}{kebab(tuple(token.alias_of.split('.')))})"
            if token.alias_of
            else _composite(token, prefix)
        )
    if value is None:
        value = css_value(token.type or "", token.value)
    note = ""
    if token.deprecated is not False:
        why = token.deprecated if isinstance(token.deprecated, str) else "deprecated"
        note = f" /* deprecated: {why.replace('*/', '* /')} */"
    return f"  {name}: {value};{note}"
