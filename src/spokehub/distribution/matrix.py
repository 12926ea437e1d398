"""The patterns x targets matrix: which pattern each owned resource came from, and one state
per (pattern, target) cell for a release.

The inventory records key, digest and release, not the pattern; the patterns source knows it
while rendering. ``key_patterns`` renders a target's transforms once per pattern (the build
cache makes the repeats cheap) and attributes each key of the full render to the pattern whose
narrowed render produced it. Keys no single pattern produced (the release event) belong to the
``RELEASE_ROW``. ``cell_state`` is pure: it combines the keys, the target's stored state, the
last drift check and the promotion into one of ``STATES``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from spokehub.distribution.errors import DistributionError
from spokehub.distribution.source import ArtifactSource, TargetView, TransformStep

__all__ = [
    "FAILED",
    "IN_SYNC",
    "MISSING",
    "MODIFIED",
    "NOT_DELIVERED",
    "PROGRESSING",
    "RELEASE_ROW",
    "ROLLED_BACK",
    "STATES",
    "cell_state",
    "key_patterns",
    "release_patterns",
]

IN_SYNC = "InSync"
MODIFIED = "Modified"
MISSING = "Missing"
PROGRESSING = "Progressing"
FAILED = "Failed"
ROLLED_BACK = "RolledBack"
NOT_DELIVERED = "Not delivered"
STATES = (IN_SYNC, MODIFIED, MISSING, PROGRESSING, FAILED, ROLLED_BACK, NOT_DELIVERED)
RELEASE_ROW = "(release)"
# Transforms that take a ``pattern`` parameter, so a render can be narrowed to one pattern.
_PER_PATTERN = ("patterns.build", "patterns.entries", "patterns.package")


def release_patterns(source: ArtifactSource, release: str) -> list[str]:
    """The pattern ids of a release of the patterns source ([] for any other source)."""
    from spokehub.distribution.toolchain import PatternsSource
    from spokehub.patterns import PatternNotFound, load_hub

    if not isinstance(source, PatternsSource):
        return []
    try:
        return sorted(load_hub(source.base / release).patterns)
    except PatternNotFound:
        return []


def key_patterns(
    source: ArtifactSource, release: str, view: TargetView, transforms: Sequence[TransformStep]
) -> dict[str, str]:
    """Every key rendered for the target, mapped to the pattern that produced it."""
    full = source.render(release, view, transforms)
    found = {key: RELEASE_ROW for key in full}
    for pid in release_patterns(source, release):
        for step in transforms:
            if step.use not in _PER_PATTERN or step.params.get("pattern", pid) != pid:
                continue
            narrowed = TransformStep(step.name, step.use, {**step.params, "pattern": pid})
            try:
                keys = source.render(release, view, [narrowed])
            except DistributionError:
                continue  # this pattern cannot be built by this transform (another platform)
            for key in keys:
                if key in found:
                    found[key] = pid
    return found


def cell_state(
    keys: Collection[str],
    *,
    release: str,
    promotion: str | None,
    target: Mapping[str, Any] | None,
    inventory: Collection[str],
    drift: Mapping[str, str],
    failed: bool = False,
) -> str:
    """The state of one pattern's resources on one target for ``release``.

    ``keys``: the keys of the pattern rendered for the target; ``promotion``: the release's
    promotion status; ``target``: the target's stored row (release, sync, ...);
    ``inventory``: the keys the target owns; ``drift``: key -> drift state of the last check
    (only keys still drifted); ``failed``: the target's apply failed in this release.
    """
    if not keys:
        return NOT_DELIVERED
    row = target or {}
    if row.get("sync") == ROLLED_BACK and promotion in (ROLLED_BACK, FAILED):
        return ROLLED_BACK
    if failed:
        return FAILED
    if row.get("release") != release:
        return PROGRESSING if promotion == PROGRESSING else NOT_DELIVERED
    states = {drift[k] for k in keys if k in drift}
    if MISSING in states or any(k not in inventory for k in keys):
        return PROGRESSING if promotion == PROGRESSING else MISSING
    if states:
        return MODIFIED
    return IN_SYNC
