"""Compare two states of a hub: a folder against another folder or a git revision."""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from spokehub.patterns.diff import Change, bump_version, diff_openapi, diff_tokens, required_bump
from spokehub.patterns.errors import PatternError
from spokehub.patterns.hub import Hub, Pattern, load_hub

__all__ = ["PatternDiff", "diff_hubs", "diff_patterns", "git_commit", "load_hub_at"]


@dataclass(frozen=True, slots=True)
class PatternDiff:
    """The typed changes of one pattern between two states, and what they require."""

    pattern: str
    old_version: str | None
    new_version: str
    changes: list[Change]

    @property
    def bump(self) -> str:
        return "major" if self.old_version is None else required_bump(self.changes)

    @property
    def required_version(self) -> str:
        if self.old_version is None:
            return self.new_version
        return bump_version(self.old_version, self.bump)

    @property
    def ok(self) -> bool:
        from spokehub.patterns.diff import parse_semver

        return parse_semver(self.new_version) >= parse_semver(self.required_version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "bump": self.bump,
            "required_version": self.required_version,
            "ok": self.ok,
            "changes": [c.to_dict() for c in self.changes],
        }


def diff_patterns(old: Pattern | None, new: Pattern) -> PatternDiff:
    """Typed changes of ``new`` since ``old`` (every resolver permutation for tokens)."""
    if old is None:
        return PatternDiff(new.id, None, new.version, [])
    changes: list[Change] = []
    if new.manifest.kind == "design-tokens":
        seen: set[tuple[str, str, str]] = set()
        old_sets = {tuple(sorted(i.items())): t for i, t in old.token_sets()}
        for inputs, tokens in new.token_sets():
            before = old_sets.get(tuple(sorted(inputs.items())))
            if before is None:
                continue
            for change in diff_tokens(before, tokens, new.manifest.rules):
                key = (change.kind, change.subject, change.detail)
                if key not in seen:
                    seen.add(key)
                    changes.append(change)
    elif new.manifest.kind == "openapi":
        changes = diff_openapi(old.document().value, new.document().value)
    elif old.digest != new.digest:
        changes = [Change("value-changed", new.id, "content changed", "patch")]
    return PatternDiff(new.id, old.version, new.version, changes)


def diff_hubs(old: Hub | None, new: Hub) -> list[PatternDiff]:
    """One PatternDiff per pattern of ``new`` (removed patterns are not listed)."""
    return [
        diff_patterns(old.patterns.get(pid) if old else None, pattern)
        for pid, pattern in sorted(new.patterns.items())
    ]


def _git(root: Path, *args: str) -> bytes:
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], check=True, capture_output=True
        ).stdout
    except FileNotFoundError:
        raise PatternError("git is not installed; compare with a folder instead") from None
    except subprocess.CalledProcessError as exc:
        raise PatternError(
            f"git {' '.join(args)} failed: {exc.stderr.decode(errors='replace').strip()}"
        ) from None


def git_commit(root: Path) -> str | None:
    """The commit checked out at ``root`` (None outside a git work tree)."""
    try:
        return _git(root, "rev-parse", "HEAD").decode().strip()
    except PatternError:
        return None


def load_hub_at(root: Path, ref: str) -> tuple[Hub, tempfile.TemporaryDirectory[str]]:
    """The hub at ``root`` as of git revision ``ref`` (keep the returned folder alive)."""
    prefix = _git(root, "rev-parse", "--show-prefix").decode().strip()
    data = _git(root, "archive", "--format=tar", f"{ref}:{prefix}" if prefix else ref)
    folder = tempfile.TemporaryDirectory(prefix="spokehub-hub-")
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(folder.name, filter="data")
    return load_hub(Path(folder.name)), folder
