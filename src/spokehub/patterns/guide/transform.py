"""The ``guide`` platform: render the accepted sections of ``llm.lock.json``, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from spokehub.patterns.canonical import digest_bytes
from spokehub.patterns.guide.generate import render_guide
from spokehub.patterns.guide.lock import LOCK_NAME, GuideLock
from spokehub.patterns.source import SourceDoc
from spokehub.patterns.transforms.base import Output, RenderContext

__all__ = ["GuideTransform", "lock_digest"]


def lock_digest(root: Path) -> str:
    """Digest of the hub's lock file (of nothing when there is none)."""
    path = root / LOCK_NAME
    return digest_bytes(path.read_bytes() if path.is_file() else b"")


class GuideTransform:
    id: ClassVar[str] = "guide"
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {"file": "getting-started.md"}

    def __init__(self, root: Path) -> None:
        self.root = root

    def render_spec(self, ctx: RenderContext, doc: SourceDoc) -> list[Output]:
        lock = GuideLock.load(self.root / LOCK_NAME)
        text, missing = render_guide(ctx.pattern_id, doc.value, lock)
        header = "<!--\n" + "\n".join(ctx.header_lines())
        if missing:
            header += "\nsections awaiting review: " + ", ".join(missing)
        return [Output(ctx.params["file"], header + "\n-->\n\n" + text)]
