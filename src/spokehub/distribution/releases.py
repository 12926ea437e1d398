"""From a recorded ``PatternRelease`` to a release a distribution can roll out.

``spokehub patterns release`` records an immutable release in the store: every pattern's
version and content digest, and the git commit of the sources. A distribution renders releases
from ``releases/<id>/`` folders of its hub (``toolchain.PatternsSource``); ``freeze`` makes that
folder from the record, never from whatever the working tree holds now:

1. the release is looked up by id, digest, prefix or ``latest``;
2. its sources are taken from the recorded commit (``git archive``), or, when no commit was
   recorded, from the working tree, but only if it still holds exactly those patterns;
3. every pattern's version and digest must equal the record, or nothing is written;
4. the hub is copied to ``releases/<id>/`` through a temporary folder and one rename, with
   ``release.json`` (the record) beside it. A folder that exists already is checked against the
   record and left as it is: freezing twice writes nothing, and a folder that differs is a
   conflict, never overwritten.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spokehub.distribution.errors import DistributionError
from spokehub.store import Store

if TYPE_CHECKING:
    from spokehub.patterns.release import Release

RECORD = "release.json"


class ReleaseMismatch(DistributionError):
    """The sources found for a release are not the ones it recorded."""

    code = "release-mismatch"


@dataclass(frozen=True, slots=True)
class Frozen:
    """What ``freeze`` did: the release id, its folder, and whether it wrote it."""

    release: str
    digest: str
    folder: Path
    written: bool
    source: str  # "commit <sha>" or "working tree"

    def to_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "digest": self.digest,
            "folder": str(self.folder),
            "written": self.written,
            "source": self.source,
        }


def _patterns_of(root: Path, hub: Any = None) -> dict[str, dict[str, str]]:
    """``{pattern id: {version, digest}}`` of the hub at ``root`` (or of ``hub``, loaded)."""
    from spokehub.patterns import load_hub

    hub = hub if hub is not None else load_hub(root)
    return {
        pid: {"version": p.version, "digest": p.digest} for pid, p in sorted(hub.patterns.items())
    }


def _compare(expected: dict[str, Any], found: dict[str, Any], where: str) -> None:
    problems = []
    for pid in sorted(set(expected) | set(found)):
        want, got = expected.get(pid), found.get(pid)
        if got is None:
            problems.append(f"{pid}: missing from {where}")
        elif want is None:
            problems.append(f"{pid}: in {where} but not in the release")
        elif want != got:
            problems.append(
                f"{pid}: release has {want['version']} {want['digest'][:19]}, "
                f"{where} has {got['version']} {got['digest'][:19]}"
            )
    if problems:
        raise ReleaseMismatch(
            f"the sources in {where} are not the release's: " + "; ".join(problems)
        )


async def freeze(store: Store, patterns_hub: Path, hub: Path, ref: str = "latest") -> Frozen:
    """Freeze the recorded release ``ref`` of ``patterns_hub`` into ``hub/releases/<id>/``."""
    from spokehub.patterns.release import get_release

    release = await get_release(store, ref)
    return await asyncio.to_thread(_freeze, release, patterns_hub, hub)


def _freeze(release: Release, patterns_hub: Path, hub: Path) -> Frozen:
    from spokehub.patterns.compare import load_hub_at

    patterns_hub, hub = patterns_hub.resolve(), hub.resolve()
    expected = release.document["patterns"]
    target = hub / "releases" / release.id
    if (target / RECORD).exists():
        _compare(expected, _patterns_of(target), str(target))
        return Frozen(release.id, release.digest, target, False, "already frozen")
    if target.exists():
        raise ReleaseMismatch(
            f"{target} exists but is not a frozen release (no {RECORD}); move it away first"
        )
    commit = release.document.get("sourceCommit")
    keep: tempfile.TemporaryDirectory[str] | None = None
    try:
        if commit:
            try:
                loaded, keep = load_hub_at(patterns_hub, str(commit))
            except Exception as exc:
                raise ReleaseMismatch(
                    f"release {release.id} was cut from commit {str(commit)[:12]}, which "
                    f"{patterns_hub} cannot give back ({exc}); fetch that commit first"
                ) from exc
            origin, source = Path(keep.name), f"commit {commit}"
            found = _patterns_of(origin, loaded)
        else:
            origin, source = patterns_hub, "working tree"
            found = _patterns_of(origin)
        _compare(expected, found, source)
        _copy(origin, target, release.to_dict())
    finally:
        if keep is not None:
            keep.cleanup()
    return Frozen(release.id, release.digest, target, True, source)


def _copy(origin: Path, target: Path, record: dict[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        shutil.copytree(origin, staging, dirs_exist_ok=True, ignore=_top_level(origin))
        (staging / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        staging.rename(target)  # one rename: a reader sees no folder or the whole release
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _top_level(origin: Path) -> Any:
    """Leave out the hub's own git folder and frozen releases (the hub may be its own source)."""
    skip = {".git", "releases", ".spokehub"}

    def ignore(folder: str, names: list[str]) -> set[str]:
        return skip & set(names) if Path(folder) == origin else set()

    return ignore
