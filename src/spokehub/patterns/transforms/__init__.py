"""Platform transforms for design tokens (one module per platform)."""

from __future__ import annotations

from typing import Any

from spokehub.patterns.transforms.android import AndroidTransform
from spokehub.patterns.transforms.base import Transform
from spokehub.patterns.transforms.css import CssTransform
from spokehub.patterns.transforms.dtcg_json import DtcgJsonTransform
from spokehub.patterns.transforms.markdown import MarkdownTransform
from spokehub.patterns.transforms.scss import ScssTransform
from spokehub.patterns.transforms.swift import SwiftTransform
from spokehub.patterns.transforms.typescript import TypeScriptTransform

__all__ = ["TOKEN_PLATFORMS", "Transform"]

TOKEN_PLATFORMS: dict[str, Any] = {
    "css": CssTransform,
    "scss": ScssTransform,
    "ts": TypeScriptTransform,
    "swift": SwiftTransform,
    "android": AndroidTransform,
    "markdown": MarkdownTransform,
    "dtcg-json": DtcgJsonTransform,
}
