"""``registry``: a folder of versioned tarballs with an ``index.json``; versions are immutable.

Keys are file names ``<name>-<version>.tgz``. Publishing the same version with the same digest
is a no-op; the same version with another digest is a conflict (the plan shows it, and an
apply refuses). Old versions are never deleted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from spokehub.distribution.adapters.base import (
    BaseAdapter,
    applied,
    capabilities,
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
    Precondition,
    Scope,
    digest,
)

_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_.@/-]+?)-(?P<version>\d+\.\d+\.\d+[A-Za-z0-9.+-]*)\.tgz$")
INDEX = "index.json"


class RegistryAdapter(BaseAdapter):
    """Publish tarballs under ``config.path``, listed in its ``index.json``."""

    kind = "registry"
    CAPABILITIES = capabilities("read", "conditional_write")
    immutable = True

    def _configure(self) -> None:
        self.root = self._folder("the registry folder")

    def _index(self) -> dict[str, Any]:
        try:
            raw = json.loads((self.root / INDEX).read_text())
        except FileNotFoundError:
            return {"packages": {}}
        except (OSError, ValueError) as exc:
            raise AdapterError(f"{self.root / INDEX} is unreadable ({exc})") from exc
        return raw if isinstance(raw, dict) else {"packages": {}}

    def read(self, keys: Sequence[str]) -> Mapping[str, Observed | None]:
        self.calls["read"] += 1
        out: dict[str, Observed | None] = {}
        for key in keys:
            data = read_file(self.root / key)
            out[key] = None if data is None else Observed(key, data)
        return out

    def discover(self, scope: Scope) -> Iterable[Observed]:
        self.calls["discover"] += 1
        if not self.root.exists():
            return []
        return [Observed(p.name, p.read_bytes()) for p in sorted(self.root.glob("*.tgz"))]

    def apply(
        self, op: Op, *, idempotency_key: str, expect: Precondition | None, ctx: ApplyContext
    ) -> OpResult:
        if op.action is Action.DELETE:
            return OpResult(op.key, op.action, op.before, changed=False, detail="versions are kept")
        match = _NAME.match(op.key)
        if match is None or op.data is None:
            raise AdapterError(f"registry keys are '<name>-<version>.tgz', got {op.key!r}")
        path = self.root / op.key
        data = read_file(path)
        if data is not None:
            have = digest(data)
            if have == op.after:
                return applied(op, changed=False, detail="already published")
            raise AdapterError(
                f"{op.key} is already published with {have}; versions are immutable: "
                "bump the version instead"
            )
        write_atomically(path, op.data)
        index = self._index()
        versions = index.setdefault("packages", {}).setdefault(match["name"], {})
        versions[match["version"]] = {"file": op.key, "digest": op.after}
        write_atomically(
            self.root / INDEX, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()
        )
        self.calls["write"] += 1
        return applied(op)
