"""Where a worker's policy set comes from: a directory, re-read when its files change.

The set is re-checked at most every ``check_every`` seconds (a stat of each file, no read when
nothing changed). A changed set that loads is swapped in at once, with no restart; one that
does not load is refused with its problems logged, and the last good set stays in force.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from spokehub.governance.engines import PolicyEngine
from spokehub.governance.errors import PolicyLoadError
from spokehub.governance.policyset import PolicySet, load_policy_dir, policy_files

__all__ = ["PolicySource"]

log = logging.getLogger("spokehub.governance")

Fingerprint = tuple[tuple[str, int, int], ...]


class PolicySource:
    """The current policy set of a directory (or a fixed set, with ``PolicySource.fixed``).

    Args:
        directory: the policy directory (``SPOKEHUB_POLICY_DIR``).
        engine: the CEL engine (name or instance); default ``cel-expr-python``.
        check_every: seconds between looks at the files.
        on_change: called with (old digest, new set) after a new set is swapped in.

    Raises:
        PolicyLoadError: the directory does not load at start (a worker must not start
            without its policies).
    """

    def __init__(
        self,
        directory: str | Path | None,
        *,
        engine: PolicyEngine | str | None = None,
        check_every: float = 1.0,
        on_change: Callable[[str | None, PolicySet], None] | None = None,
        initial: PolicySet | None = None,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.engine = engine
        self.check_every = check_every
        self.on_change = on_change
        self.last_error: PolicyLoadError | None = None
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._fingerprint: Fingerprint = ()
        if initial is not None:
            self._set = initial
        else:
            self._fingerprint = self._stat()
            self._set = load_policy_dir(self._dir, engine=engine)

    @classmethod
    def fixed(cls, policies: PolicySet) -> PolicySource:
        """A source that always answers ``policies`` (tests, embedded use)."""
        return cls(None, initial=policies)

    @property
    def _dir(self) -> Path:
        assert self.directory is not None
        return self.directory

    def _stat(self) -> Fingerprint:
        out = []
        for path in policy_files(self._dir):
            try:
                st = path.stat()
            except OSError:
                continue  # removed between listing and stat: the next look sees it gone
            out.append((str(path), st.st_mtime_ns, st.st_size))
        return tuple(out)

    def current(self) -> PolicySet:
        """The set in force, reloaded first if the files changed since the last look."""
        if self.directory is not None and time.monotonic() - self._checked >= self.check_every:
            self.refresh()
        return self._set

    def refresh(self) -> bool:
        """Look at the files now; True when a new set was swapped in."""
        if self.directory is None:
            return False
        with self._lock:
            self._checked = time.monotonic()
            try:
                fingerprint = self._stat()
            except PolicyLoadError as exc:
                return self._refuse(exc, ())
            if fingerprint == self._fingerprint:
                return False
            try:
                new = load_policy_dir(self._dir, engine=self.engine)
            except PolicyLoadError as exc:
                return self._refuse(exc, fingerprint)
            old, self._set, self._fingerprint = self._set, new, fingerprint
            self.last_error = None
        if new.digest != old.digest:
            log.info("policy set changed: %s -> %s (%s)", old.digest, new.digest, self.directory)
            if self.on_change is not None:
                self.on_change(old.digest, new)
        return new.digest != old.digest

    def _refuse(self, exc: PolicyLoadError, fingerprint: Fingerprint) -> bool:
        # Remember the bad fingerprint so a broken file is reported once, not on every look.
        self._fingerprint = fingerprint
        self.last_error = exc
        log.error(
            "policy files in %s changed but do not load; keeping the last good set %s. %s",
            self.directory,
            self._set.digest,
            exc,
        )
        return False
