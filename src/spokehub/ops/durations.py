"""Durations as people type them: ``30d``, ``12h``, ``15m``, ``45s``, ``1h30m``, ``2w``."""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"w": 604_800.0, "d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: numbers with a unit (w, d, h, m, s), e.g. ``30d`` or ``1h30m``.

    Raises:
        ValueError: with a message that shows the accepted form.
    """
    compact = text.strip().lower().replace(" ", "")
    pos = 0
    total = 0.0
    for match in _PART.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not compact or pos != len(compact):
        raise ValueError(
            f"{text!r} is not a duration; write a number with a unit: 30d, 12h, 15m, 45s "
            "(or combined, like 1h30m)"
        )
    return total


def format_duration(seconds: float) -> str:
    """A short human form: ``850ms``, ``4.2s``, ``3m07s``, ``2h05m``, ``3d04h``."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86_400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86_400}d{whole % 86_400 // 3600:02d}h"
