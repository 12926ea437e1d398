"""Text filters applied to every JSON payload just before the database stores it.

The secrets layer (``spokehub.governance``) registers one when a secret is resolved, so that a
secret's value is masked in run inputs and results, ledger events, errors, blobs and inbox
payloads whatever path wrote them. With no filter registered, payloads are written untouched
and the cost is one empty-list check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["add_text_filter", "dumps", "filter_text", "filter_value", "filters_active"]

_filters: list[Callable[[str], str]] = []


def add_text_filter(fn: Callable[[str], str]) -> None:
    """Register ``fn`` (idempotent): it gets each payload's JSON text and returns it masked."""
    if fn not in _filters:
        _filters.append(fn)


def filters_active() -> bool:
    return bool(_filters)


def filter_text(text: str) -> str:
    for fn in _filters:
        text = fn(text)
    return text


def filter_value(value: Any) -> Any:
    """``value`` (JSON) passed through the filters; the same object when there are none."""
    if not _filters:
        return value
    try:
        text = json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError):  # not JSON: the store's own encoding will say so
        return value
    masked = filter_text(text)
    return value if masked == text else json.loads(masked)


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` then the filters: what the stores use for every payload they write."""
    return filter_text(json.dumps(value, **kwargs)) if _filters else json.dumps(value, **kwargs)
