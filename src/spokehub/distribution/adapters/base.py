"""The adapter protocol every target kind speaks, and the registry that finds adapters.

Built-in kinds are registered here by module path, so nothing heavy is imported until a target
uses it. Third-party adapters register through the ``spokehub.adapters`` entry point group::

    [project.entry-points."spokehub.adapters"]
    s3 = "my_package.s3:S3Adapter"
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from spokehub.distribution.errors import AdapterError, PreconditionFailed
from spokehub.distribution.model import (
    Action,
    ApplyContext,
    Capabilities,
    DesiredResource,
    Health,
    HealthStatus,
    Observed,
    Op,
    OpResult,
    Precondition,
    Scope,
)

ENTRY_POINT_GROUP = "spokehub.adapters"

BUILTIN: dict[str, str] = {
    "fs": "spokehub.distribution.adapters.fs:FsAdapter",
    "git": "spokehub.distribution.adapters.git:GitAdapter",
    "http-cms": "spokehub.distribution.adapters.http_cms:HttpCmsAdapter",
    "webhook": "spokehub.distribution.adapters.webhook:WebhookAdapter",
    "registry": "spokehub.distribution.adapters.registry:RegistryAdapter",
}


@runtime_checkable
class TargetAdapter(Protocol):
    """One target instance. Built from the Target manifest's ``spec.config``."""

    kind: ClassVar[str]

    def capabilities(self) -> Capabilities: ...
    def canonicalize(self, key: str, data: bytes) -> bytes: ...
    def read(self, keys: Sequence[str]) -> Mapping[str, Observed | None]: ...
    def discover(self, scope: Scope) -> Iterable[Observed]: ...
    def apply(
        self, op: Op, *, idempotency_key: str, expect: Precondition | None, ctx: ApplyContext
    ) -> OpResult: ...
    def apply_batch(
        self, ops: Sequence[tuple[Op, str]], *, ctx: ApplyContext, check: bool = True
    ) -> list[OpResult]: ...
    def health(self, results: Sequence[OpResult]) -> Health: ...
    def import_(self, observed: Observed) -> DesiredResource: ...


class BaseAdapter:
    """Shared behaviour: per-op batches, a precondition check, counters for tests and demos."""

    kind: ClassVar[str] = ""
    # What the adapter can do; ``capabilities()`` hands out a copy.
    CAPABILITIES: ClassVar[Capabilities]

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        credentials: str | None = None,
        owner: str = "spokehub",
    ) -> None:
        self.config = dict(config)
        self.credentials = credentials
        self.owner = owner
        # Real calls made against the target; the demo and the tests read these.
        self.calls: dict[str, int] = {"read": 0, "write": 0, "delete": 0, "discover": 0}
        self._configure()

    def _configure(self) -> None:
        """Read the adapter's own settings from ``self.config`` (called by ``__init__``)."""

    def _required(self, name: str, message: str) -> str:
        """``config[name]`` as text; ``AdapterError(message)`` when it is missing or empty."""
        value = self.config.get(name)
        if not value:
            raise AdapterError(message)
        return str(value)

    def _folder(self, what: str) -> Path:
        """``config.path`` as a Path; an AdapterError naming ``what`` it should be if missing."""
        return Path(self._required("path", f"a {self.kind} target needs spec.config.path ({what})"))

    def canonicalize(self, key: str, data: bytes) -> bytes:
        return data

    def import_(self, observed: Observed) -> DesiredResource:
        return DesiredResource(observed.key, observed.data)

    def health(self, results: Sequence[OpResult]) -> Health:
        return Health(HealthStatus.HEALTHY, f"{len(results)} resource(s) applied")

    def apply(
        self, op: Op, *, idempotency_key: str, expect: Precondition | None, ctx: ApplyContext
    ) -> OpResult:
        raise NotImplementedError

    def read(self, keys: Sequence[str]) -> Mapping[str, Observed | None]:
        raise NotImplementedError

    def discover(self, scope: Scope) -> Iterable[Observed]:
        raise NotImplementedError

    def capabilities(self) -> Capabilities:
        return Capabilities(**type(self).CAPABILITIES)

    def apply_batch(
        self, ops: Sequence[tuple[Op, str]], *, ctx: ApplyContext, check: bool = True
    ) -> list[OpResult]:
        """Apply ops one by one; each is idempotent by its key and guarded by its precondition."""
        return [
            self.apply(
                op, idempotency_key=key, expect=op.precondition() if check else None, ctx=ctx
            )
            for op, key in ops
        ]


class BatchAdapter(BaseAdapter):
    """An adapter that writes a whole batch at once: ``apply`` is a batch of one op."""

    def apply(
        self, op: Op, *, idempotency_key: str, expect: Precondition | None, ctx: ApplyContext
    ) -> OpResult:
        return self.apply_batch([(op, idempotency_key)], ctx=ctx, check=expect is not None)[0]

    def apply_batch(
        self, ops: Sequence[tuple[Op, str]], *, ctx: ApplyContext, check: bool = True
    ) -> list[OpResult]:
        raise NotImplementedError


Ability = Literal["read", "delete", "conditional_write", "batch_atomic", "change_request"]
Marker = Literal["header", "metadata-field", "lockfile", "none"]


def capabilities(*abilities: Ability, ownership: Marker = "none") -> Capabilities:
    """Capabilities with the named abilities on and every other off."""
    return Capabilities(
        read="read" in abilities,
        delete="delete" in abilities,
        conditional_write="conditional_write" in abilities,
        batch_atomic="batch_atomic" in abilities,
        change_request="change_request" in abilities,
        ownership_marker=ownership,
    )


def applied(op: Op, *, changed: bool = True, detail: str = "") -> OpResult:
    """The result of ``op``: it reached the desired digest (``changed`` when it wrote)."""
    return OpResult(op.key, op.action, op.after, changed=changed, detail=detail)


def read_file(path: Path) -> bytes | None:
    """The file's bytes, or None when there is no such file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename: a reader sees the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".spokehub-tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def check_precondition(
    key: str, current: Observed | None, op: Op, expect: Precondition | None
) -> bool:
    """True when the target already holds the op's outcome (so the apply is a no-op).

    Raises ``PreconditionFailed`` when the target holds neither what the plan saw nor the
    desired outcome: someone changed it after the plan.
    """
    now = None if current is None else current.digest
    done = now is None if op.action is Action.DELETE else now == op.after
    if done:
        return True
    if expect is not None and now != expect.digest:
        raise PreconditionFailed(
            f"{key}: the target holds {now or 'nothing'}, the plan expected "
            f"{expect.digest or 'nothing'}; plan again (`spokehub dist plan`)"
        )
    return False


def load_adapter_class(kind: str) -> type[BaseAdapter]:
    """The adapter class for ``kind`` (built-in or from an installed entry point)."""
    ref = BUILTIN.get(kind)
    if ref is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == kind:
                return ep.load()  # type: ignore[no-any-return]
        known = ", ".join(sorted({*BUILTIN, *available_third_party()}))
        raise AdapterError(
            f"no adapter {kind!r} is installed (known: {known}); install the package that "
            f"provides it (entry point group {ENTRY_POINT_GROUP!r})"
        )
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def available_third_party() -> list[str]:
    return [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)]


def is_installed(kind: str) -> bool:
    return kind in BUILTIN or kind in available_third_party()
