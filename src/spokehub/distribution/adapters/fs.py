"""``fs``: a folder. Keys are relative paths; ownership lives in a lockfile in the folder.

The lockfile (``.spokehub-lock.json``) maps each owner to the keys it wrote, so two hubs (or
two distributions) sharing a folder see each other's files as Conflicting, and files nobody
wrote are Unmanaged and never touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from spokehub.distribution.adapters.base import (
    BatchAdapter,
    applied,
    capabilities,
    check_precondition,
    read_file,
    write_atomically,
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

LOCKFILE = ".spokehub-lock.json"


class FsAdapter(BatchAdapter):
    """Write files under ``config.path``; never touch a file the lockfile does not give us."""

    kind = "fs"
    CAPABILITIES = capabilities("read", "delete", "conditional_write", ownership="lockfile")

    def _configure(self) -> None:
        self.root = self._folder("the folder to write")

    def _file(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or ".." in parts or "\\" in key:
            raise AdapterError(f"resource key {key!r} leaves the target folder {self.root}")
        return self.root / key

    def _lock(self) -> dict[str, dict[str, str]]:
        try:
            raw = json.loads((self.root / LOCKFILE).read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise AdapterError(
                f"{self.root / LOCKFILE} is unreadable ({exc}); fix or remove it"
            ) from exc
        owners = raw.get("owners", {}) if isinstance(raw, dict) else {}
        return {str(o): dict(keys) for o, keys in owners.items() if isinstance(keys, dict)}

    def _owner_of(self, lock: dict[str, dict[str, str]], key: str) -> str | None:
        return next((owner for owner, keys in lock.items() if key in keys), None)

    def read(self, keys: Sequence[str]) -> Mapping[str, Observed | None]:
        self.calls["read"] += 1
        lock = self._lock()
        out: dict[str, Observed | None] = {}
        for key in keys:
            data = read_file(self._file(key))
            out[key] = (
                None if data is None else Observed(key, data, owner=self._owner_of(lock, key))
            )
        return out

    def discover(self, scope: Scope) -> Iterable[Observed]:
        self.calls["discover"] += 1
        if not self.root.exists():
            return []
        lock = self._lock()
        found = []
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if not path.is_file() or rel == LOCKFILE or rel.startswith(".git/"):
                continue
            if scope.prefix and not rel.startswith(scope.prefix):
                continue
            found.append(Observed(rel, path.read_bytes(), owner=self._owner_of(lock, rel)))
        return found

    def apply_batch(
        self, ops: Sequence[tuple[Op, str]], *, ctx: ApplyContext, check: bool = True
    ) -> list[OpResult]:
        lock = self._lock()
        mine = lock.setdefault(ctx.owner, {})
        before = dict(mine)
        results = [self._apply_one(op, mine, check) for op, _ in ops]
        if mine != before:
            self._write(self.root / LOCKFILE, _lock_bytes(lock), count=False)
        return results

    def _apply_one(self, op: Op, mine: dict[str, str], check: bool) -> OpResult:
        path = self._file(op.key)
        data = read_file(path)
        current = None if data is None else Observed(op.key, data)
        if check_precondition(op.key, current, op, op.precondition() if check else None):
            _remember(mine, op)
            return applied(op, changed=False, detail="already applied")
        if op.action is Action.DELETE:
            path.unlink()
            self.calls["delete"] += 1
        else:
            if op.data is None:
                raise AdapterError(f"{op.key}: a {op.action} op carries no content")
            self._write(path, op.data)
        _remember(mine, op)
        return applied(op)

    def _write(self, path: Path, data: bytes, *, count: bool = True) -> None:
        write_atomically(path, data)
        counter = "write" if count else "lockfile"
        self.calls[counter] = self.calls.get(counter, 0) + 1


def _remember(mine: dict[str, str], op: Op) -> None:
    if op.action is Action.DELETE:
        mine.pop(op.key, None)
    elif op.after is not None:
        mine[op.key] = op.after


def _lock_bytes(lock: dict[str, dict[str, str]]) -> bytes:
    owners = {o: dict(sorted(k.items())) for o, k in sorted(lock.items()) if k}
    return (json.dumps({"owners": owners}, indent=2, sort_keys=True) + "\n").encode()
