"""Resolved DTCG JSON: every theme's tokens with concrete values, keeping their metadata.

For consumers that read DTCG themselves (a package registry, another tool): one file per theme,
``tokens.<theme>.json``, grouped as in the source, with ``$type``, the resolved ``$value``, and
``$description``, ``$deprecated`` and ``$extensions`` preserved as written (the format requires
tools to keep extension data they do not understand).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from spokehub.patterns.dtcg.resolve import Token
from spokehub.patterns.transforms.base import Output, RenderContext

__all__ = ["DtcgJsonTransform"]


class DtcgJsonTransform:
    id: ClassVar[str] = "dtcg-json"
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {"prefix": "tokens"}

    def render(self, ctx: RenderContext) -> list[Output]:
        outputs = []
        for theme in ctx.themes:
            tree: dict[str, Any] = {
                "$extensions": {
                    "dev.spokehub": {
                        "pattern": ctx.pattern_id,
                        "version": ctx.version,
                        "source": ctx.source_digest,
                        "inputs": theme.inputs,
                    }
                }
            }
            for token in theme.tokens.tokens.values():
                node = tree
                for part in token.path[:-1]:
                    node = node.setdefault(part, {})
                node[token.path[-1]] = ctx.fragment(token, _entry, "entry")
            label = "-".join(theme.inputs.values()) or "default"
            name = f"{ctx.params['prefix']}.{label}.json"
            text = json.dumps(tree, indent=2, ensure_ascii=False) + "\n"
            names = (
                tuple((t.name, t) for t in theme.tokens.tokens.values()) if theme.default else ()
            )
            outputs.append(Output(name, text, names))
        return outputs


def _entry(token: Token) -> dict[str, Any]:
    out: dict[str, Any] = {"$type": token.type, "$value": token.value}
    if token.description is not None:
        out["$description"] = token.description
    if token.deprecated is not False:
        out["$deprecated"] = token.deprecated
    if token.extensions:
        out["$extensions"] = token.extensions
    return out
