"""Immutable releases: which version and content digest of every pattern, recorded once.

The release *document* holds the patterns (``{id: {version, digest}}``), the git commit of the
sources, the parent release and who created it; the release *digest* is SHA-256 over its RFC
8785 canonical JSON, so the same sources, parent and creator always give the same digest (the
creation time is stored beside the document, not in it). Recording a release whose digest
already exists returns the existing one; rows are never updated or deleted.

Before recording, ``plan_release`` diffs every pattern against the parent release's sources
(the hub at the parent's git commit) and fails with the reasons when a declared version is
lower than the typed changes require.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spokehub.patterns.canonical import digest
from spokehub.patterns.compare import PatternDiff, diff_hubs, git_commit, load_hub_at
from spokehub.patterns.errors import (
    PatternNotFound,
    PatternValidationError,
    VersionTooLow,
)
from spokehub.patterns.hub import Hub
from spokehub.store.base import Store, Tx

__all__ = [
    "Release",
    "get_release",
    "list_releases",
    "plan_release",
    "record_release",
    "release_document",
]


@dataclass(frozen=True, slots=True)
class Release:
    """A recorded release."""

    id: str
    digest: str
    document: dict[str, Any]
    created_at: float

    @property
    def parent(self) -> str | None:
        parent = self.document.get("parent")
        return str(parent) if parent else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "digest": self.digest,
            "created_at": self.created_at,
            **self.document,
        }


def release_document(
    hub: Hub, *, created_by: str, parent: Release | None, source_commit: str | None
) -> dict[str, Any]:
    """The document a release digest is computed over."""
    return {
        "kind": "PatternRelease",
        "patterns": {
            pid: {"version": p.version, "digest": p.digest}
            for pid, p in sorted(hub.patterns.items())
        },
        "sourceCommit": source_commit,
        "parent": parent.id if parent else None,
        "createdBy": created_by,
    }


def release_id(release_digest: str) -> str:
    return "rel-" + release_digest.partition(":")[2][:16]


def plan_release(
    hub: Hub, *, created_by: str, parent: Release | None, source_commit: str | None = None
) -> tuple[Release, list[PatternDiff]]:
    """Validate, diff against the parent and build the release (not yet recorded).

    Raises PatternValidationError for invalid sources and VersionTooLow (listing every reason)
    when a pattern's declared version is below what its changes require.
    """
    problems = [d for d in hub.validate() if d.severity == "error"]
    if problems:
        raise PatternValidationError(problems)
    commit = source_commit if source_commit is not None else git_commit(hub.root)
    diffs = _diffs(hub, parent)
    failed = [d for d in diffs if not d.ok]
    if failed:
        reasons = []
        for d in failed:
            reasons.append(
                f"{d.pattern}: declared {d.new_version}, requires {d.required_version} ({d.bump})"
            )
            reasons += [f"  {c}" for c in d.changes if c.bump == d.bump]
        raise VersionTooLow(
            f"{len(failed)} pattern(s) declare a version lower than their changes require", reasons
        )
    document = release_document(hub, created_by=created_by, parent=parent, source_commit=commit)
    if parent is not None and parent.document.get("patterns") == document["patterns"]:
        return parent, diffs  # nothing changed since the parent: releasing again is a no-op
    release_digest = digest(document)
    return Release(release_id(release_digest), release_digest, document, 0.0), diffs


def _diffs(hub: Hub, parent: Release | None) -> list[PatternDiff]:
    if parent is None:
        return diff_hubs(None, hub)
    commit = parent.document.get("sourceCommit")
    previous: Hub | None = None
    keep = None
    if commit:
        try:
            previous, keep = load_hub_at(hub.root, str(commit))
        except Exception:  # the parent's commit may be gone: fall back to digests below
            previous = None
    try:
        if previous is not None:
            return diff_hubs(previous, hub)
        return [_by_digest(hub, pid, parent) for pid in sorted(hub.patterns)]
    finally:
        if keep is not None:
            keep.cleanup()


def _by_digest(hub: Hub, pid: str, parent: Release) -> PatternDiff:
    """Without the parent's sources: a changed digest needs at least a patch bump."""
    from spokehub.patterns.diff import Change

    pattern = hub.patterns[pid]
    before = parent.document["patterns"].get(pid)
    if before is None:
        return PatternDiff(pid, None, pattern.version, [])
    changes = []
    if before["digest"] != pattern.digest:
        changes.append(
            Change(
                "value-changed",
                pid,
                "content changed (parent sources not available for a typed diff)",
                "patch",
            )
        )
    return PatternDiff(pid, before["version"], pattern.version, changes)


async def record_release(store: Store, release: Release, now: float) -> Release:
    """Insert the release (idempotent by digest); returns the stored one."""

    def insert(tx: Tx) -> Release:
        row = tx.execute(
            "SELECT id, digest, document, created_at FROM pattern_releases WHERE digest = ?",
            (release.digest,),
        ).fetchone()
        if row is not None:
            return _row(row)
        tx.execute(
            "INSERT INTO pattern_releases (id, digest, parent_id, source_commit, created_by, "
            "created_at, document) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                release.id,
                release.digest,
                release.parent,
                release.document.get("sourceCommit"),
                release.document["createdBy"],
                now,
                json.dumps(release.document, sort_keys=True),
            ),
        )
        return Release(release.id, release.digest, release.document, now)

    return await store.transact(insert)


def _row(row: Any) -> Release:
    return Release(row[0], row[1], json.loads(row[2]), float(row[3]))


async def list_releases(store: Store, *, limit: int = 50) -> list[Release]:
    """Releases, newest first."""

    def select(tx: Tx) -> list[Release]:
        rows = tx.execute(
            "SELECT id, digest, document, created_at FROM pattern_releases "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [_row(r) for r in rows]

    return await store.transact(select, write=False)


async def get_release(store: Store, ref: str = "latest") -> Release:
    """A release by id, digest, unique id prefix, or ``latest``."""

    def select(tx: Tx) -> list[Any]:
        if ref == "latest":
            return tx.execute(
                "SELECT id, digest, document, created_at FROM pattern_releases "
                "ORDER BY created_at DESC, id DESC LIMIT 1"
            ).fetchall()
        return tx.execute(
            "SELECT id, digest, document, created_at FROM pattern_releases "
            "WHERE id = ? OR digest = ? OR id LIKE ?",
            (ref, ref, ref.replace("%", "") + "%"),
        ).fetchall()

    rows = await store.transact(select, write=False)
    if len(rows) != 1:
        what = "no release" if not rows else f"{len(rows)} releases match"
        raise PatternNotFound(f"{what} {ref!r}; list them with `spokehub patterns releases`")
    return _row(rows[0])


def hub_path(path: str | Path) -> Path:
    return Path(path)
