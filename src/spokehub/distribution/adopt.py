"""``adopt``: a target's edit becomes a proposed change to the source.

When the edit maps back to token values (``reverse_map``), the proposal is a unified patch of
the release's token file(s) under ``HUB/proposals/<target>/<key>.source.patch`` and, when the
hub folder is in a git repository, a branch ``spokehub/adopt/<target>/<digest>`` with one
commit changing only those files. The branch is made with plumbing (a blob, a temporary index,
``commit-tree``, ``update-ref``): the checked-out branch, the index and the working tree are
never touched. The digest is the patch's, so checking the same edit again proposes nothing new.
When the edit does not map (a structural change, a Swift file, an alias edited as a value...),
the proposal is the rendered file's patch, ``<key>.patch``, headed by the reason.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spokehub.distribution.manifests import Manifest
from spokehub.distribution.plan import unified
from spokehub.distribution.reverse_map import SourceChange, Unmappable, reverse
from spokehub.distribution.wiring import DistContext

BRANCH_PREFIX = "spokehub/adopt"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "spokehub",
    "GIT_AUTHOR_EMAIL": "spokehub@localhost",
    "GIT_COMMITTER_NAME": "spokehub",
    "GIT_COMMITTER_EMAIL": "spokehub@localhost",
}


@dataclass(slots=True)
class Proposal:
    """What adopt proposed for one drifted resource."""

    key: str
    kind: str  # "source": token values; "rendered": the rendered file's patch
    patch: str  # relative to the hub folder
    reason: str = ""  # why it is not a source change
    tokens: list[dict[str, Any]] = field(default_factory=list)
    branch: str = ""
    branch_note: str = ""  # why there is no branch

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "patch": self.patch,
            "reason": self.reason,
            "tokens": self.tokens,
            "branch": self.branch,
            "branch_note": self.branch_note,
        }


def propose(
    ctx: DistContext,
    target: Manifest,
    release: str,
    key: str,
    expected: bytes | None,
    actual: bytes | None,
) -> Proposal:
    """Write the proposal for one drifted resource (and its branch when the hub is in git)."""
    root = ctx.hub.root
    folder = root / "proposals" / target.name
    stem = key.replace("/", "__")
    try:
        change = reverse(ctx, target, release, key, expected, actual)
    except Exception as exc:  # unmappable, or a release that no longer loads: still propose
        reason = str(exc) if isinstance(exc, Unmappable) else f"{type(exc).__name__}: {exc}"
        note = f"spokehub adopt: {target.name} {key} is not mapped to the token source: {reason}\n"
        return Proposal(
            key,
            "rendered",
            _write(root, folder / f"{stem}.patch", note + unified(key, expected, actual)),
            reason,
        )
    repo = repo_root(root)
    base = repo if repo is not None else root.resolve()
    paths = {f: _relative(change.release_dir / f, base) for f in change.files}
    patch = "".join(
        unified(paths[f], old.encode(), new.encode())
        for f, (old, new) in sorted(change.files.items())
    )
    summary = ", ".join(f"{e.token} {e.theme}" for e in change.edits)
    head = f"spokehub adopt: {target.name} {key}: {summary}\n"
    proposal = Proposal(
        key,
        "source",
        _write(root, folder / f"{stem}.source.patch", head + patch),
        tokens=[e.to_dict() for e in change.edits],
    )
    if repo is None:
        proposal.branch_note = "the hub folder is not in a git repository"
        return proposal
    digest = hashlib.sha256(patch.encode()).hexdigest()[:12]
    branch = f"{BRANCH_PREFIX}/{target.name}/{digest}"
    message = f"adopt {target.name}'s edit of {key}\n\n{summary}\n"
    proposal.branch, proposal.branch_note = commit_branch(repo, branch, change, paths, message)
    return proposal


def _write(root: Path, path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path.relative_to(root))


def _relative(path: Path, base: Path) -> str:
    return path.resolve().relative_to(base).as_posix()


def _git(
    repo: Path, *args: str, data: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        input=data,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def repo_root(folder: Path) -> Path | None:
    """The top of the git repository ``folder`` is in, or None."""
    try:
        done = _git(folder, "rev-parse", "--show-toplevel")
    except OSError:  # no git on this machine: patches only
        return None
    return Path(done.stdout.strip()).resolve() if done.returncode == 0 else None


def commit_branch(
    repo: Path, branch: str, change: SourceChange, paths: dict[str, str], message: str
) -> tuple[str, str]:
    """Create ``branch`` (one commit on HEAD with the new file texts); (branch, note)."""
    ref = f"refs/heads/{branch}"
    if _git(repo, "rev-parse", "--verify", "--quiet", ref).returncode == 0:
        return branch, "already proposed"
    head = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if head.returncode != 0:
        return "", "the hub's repository has no commit yet: only the patch was written"
    parent = head.stdout.strip()
    for file, (old, _) in change.files.items():
        committed = _git(repo, "cat-file", "blob", f"{parent}:{paths[file]}")
        if committed.returncode != 0 or committed.stdout != old:
            return (
                "",
                f"{paths[file]} differs from HEAD (not committed): only the patch was written",
            )
    with tempfile.TemporaryDirectory(prefix="spokehub-adopt-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), **_IDENTITY}
        steps: list[tuple[str, ...]] = [("read-tree", parent)]
        for file, (_, new) in sorted(change.files.items()):
            blob = _git(repo, "hash-object", "-w", "--stdin", data=new).stdout.strip()
            mode = _git(repo, "ls-tree", parent, "--", paths[file]).stdout.split(" ", 1)[0]
            steps.append(
                ("update-index", "--cacheinfo", f"{mode or '100644'},{blob},{paths[file]}")
            )
        for args in steps:
            done = _git(repo, *args, env=env)
            if done.returncode != 0:
                return "", f"git {args[0]} failed: {done.stderr.strip()}"
        tree = _git(repo, "write-tree", env=env).stdout.strip()
        commit = _git(repo, "commit-tree", tree, "-p", parent, data=message, env=env)
        if commit.returncode != 0:
            return "", f"git commit-tree failed: {commit.stderr.strip()}"
    made = _git(repo, "update-ref", ref, commit.stdout.strip(), "0" * 40)
    if made.returncode != 0:
        return "", f"git update-ref failed: {made.stderr.strip()}"
    return branch, ""
