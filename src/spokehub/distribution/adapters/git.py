"""``git``: a local repository through the git CLI, one branch per release.

Each apply builds a tree from the current managed commit plus the changes (with a private index
file, never touching the user's work tree), and commits only when the tree differs. The branch
``<branchPrefix><release>`` points at the commit; ``refs/spokehub/<owner>`` remembers the last
one, which is what ``read`` observes. The commit message carries the plan summary.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from spokehub.distribution.adapters.base import (
    BatchAdapter,
    applied,
    capabilities,
    check_precondition,
)
from spokehub.distribution.errors import AdapterError
from spokehub.distribution.model import (
    Action,
    ApplyContext,
    Observed,
    Op,
    OpResult,
    Scope,
)

# Fixed identity and dates: the same change gives the same commit id on every machine.
_ENV = {
    "GIT_AUTHOR_NAME": "spokehub",
    "GIT_AUTHOR_EMAIL": "spokehub@localhost",
    "GIT_COMMITTER_NAME": "spokehub",
    "GIT_COMMITTER_EMAIL": "spokehub@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class GitAdapter(BatchAdapter):
    """Commit resources to a branch per release in ``config.path`` (a git repository)."""

    kind = "git"
    CAPABILITIES = capabilities(
        "read", "delete", "conditional_write", "batch_atomic", "change_request"
    )

    def _configure(self) -> None:
        self.repo = self._folder("a local repository")
        self.base = str(self.config.get("baseBranch", "main"))
        self.prefix = str(self.config.get("branchPrefix", "patterns/"))

    def _git(
        self, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
    ) -> bytes:
        full = {**os.environ, **_ENV, **(env or {})}
        proc = subprocess.run(
            ["git", "-C", str(self.repo), *args],
            input=stdin,
            capture_output=True,
            env=full,
            check=False,
        )
        if proc.returncode != 0:
            raise AdapterError(
                f"git {' '.join(args[:2])} in {self.repo}: {proc.stderr.decode().strip()}"
            )
        return proc.stdout

    def _ref(self, name: str) -> str | None:
        try:
            return self._git("rev-parse", "--verify", "-q", name + "^{commit}").decode().strip()
        except AdapterError:
            return None

    def _managed_ref(self, owner: str) -> str:
        return "refs/spokehub/" + "".join(c if c.isalnum() or c in "-_" else "-" for c in owner)

    def _head(self, owner: str = "") -> str | None:
        return (self._ref(self._managed_ref(owner)) if owner else None) or self._ref(self.base)

    def read(self, keys: Sequence[str]) -> Mapping[str, Observed | None]:
        self.calls["read"] += 1
        head = self._current()
        files = self._tree_files(head) if head else {}
        return {k: (Observed(k, self._blob(files[k])) if k in files else None) for k in keys}

    def _current(self) -> str | None:
        return self._head(self.owner)

    def _tree_files(self, commit: str) -> dict[str, str]:
        out = self._git("ls-tree", "-r", "-z", commit)
        files = {}
        for entry in out.split(b"\0"):
            if entry:
                meta, _, path = entry.partition(b"\t")
                files[path.decode()] = meta.split()[2].decode()
        return files

    def _blob(self, sha: str) -> bytes:
        return self._git("cat-file", "blob", sha)

    def discover(self, scope: Scope) -> Iterable[Observed]:
        self.calls["discover"] += 1
        head = self._current()
        if head is None:
            return []
        files = self._tree_files(head)
        return [
            Observed(path, self._blob(sha))
            for path, sha in sorted(files.items())
            if path.startswith(scope.prefix)
        ]

    def apply_batch(
        self, ops: Sequence[tuple[Op, str]], *, ctx: ApplyContext, check: bool = True
    ) -> list[OpResult]:
        """One commit for the whole batch, and none when the tree does not change."""
        parent = self._head(ctx.owner)
        current = self.read([op.key for op, _ in ops])
        results, changes = [], []
        for op, _ in ops:
            guard = op.precondition() if check else None
            if check_precondition(op.key, current[op.key], op, guard):
                results.append(applied(op, changed=False))
            else:
                changes.append(op)
                results.append(applied(op))
        if changes:
            self._commit(parent, changes, ctx)
        return results

    def _commit(self, parent: str | None, ops: Sequence[Op], ctx: ApplyContext) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent:
                self._git("read-tree", parent, env=env)
            for op in ops:
                if op.action is Action.DELETE:
                    self._git("update-index", "--force-remove", "--", op.key, env=env)
                    continue
                sha = self._git("hash-object", "-w", "--stdin", stdin=op.data).decode().strip()
                self._git("update-index", "--add", "--cacheinfo", f"100644,{sha},{op.key}", env=env)
            tree = self._git("write-tree", env=env).decode().strip()
        if parent and self._git("rev-parse", parent + "^{tree}").decode().strip() == tree:
            return
        message = f"spokehub: {ctx.distribution} release {ctx.release}\n\n{ctx.summary}\n"
        args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
        commit = self._git(*args).decode().strip()
        self._git("update-ref", f"refs/heads/{self.prefix}{ctx.release}", commit)
        self._git("update-ref", self._managed_ref(ctx.owner), commit)
        self.calls["write"] += 1
