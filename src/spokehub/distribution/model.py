"""The values the distribution layer passes around: resources, observations, operations, health.

Everything here is plain data. Digests are ``sha256:<hex>`` over the canonical bytes an adapter
produces, so equal digests mean "nothing to do" (see ``docs/distribution.md``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypedDict


def digest(data: bytes) -> str:
    """The content digest every layer compares: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Stable JSON bytes (sorted keys, no spaces) so that equal values hash equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def short(d: str | None) -> str:
    """``sha256:abcdef123456`` for display."""
    return "-" if d is None else d[:19]


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    NOOP = "no-op"
    CONFLICT = "conflict"


class HealthStatus(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"


class Capabilities(TypedDict):
    """What an adapter can do (see ``docs/distribution.md``, "Writing an adapter")."""

    read: bool
    delete: bool
    conditional_write: bool
    batch_atomic: bool
    change_request: bool
    ownership_marker: Literal["header", "metadata-field", "lockfile", "none"]


@dataclass(frozen=True, slots=True)
class DesiredResource:
    """One resource a release wants at a target: a stable key and its canonical bytes."""

    key: str
    data: bytes
    media_type: str = "application/octet-stream"
    digest: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", digest(self.data))


@dataclass(frozen=True, slots=True)
class Observed:
    """What a target holds for a key. ``owner`` is the ownership marker found there, if any."""

    key: str
    data: bytes
    etag: str | None = None
    owner: str | None = None
    digest: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", digest(self.data))


@dataclass(frozen=True, slots=True)
class Precondition:
    """What the target must still hold for a write to go ahead (``digest=None``: absent)."""

    digest: str | None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class Op:
    """One planned change. ``before``/``after`` are digests; ``data`` is the new content."""

    action: Action
    key: str
    before: str | None = None
    after: str | None = None
    reason: str = ""
    data: bytes | None = None
    etag: str | None = None
    media_type: str = "application/octet-stream"

    def precondition(self) -> Precondition:
        return Precondition(digest=self.before, etag=self.etag)

    def to_dict(self, *, with_data: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action.value,
            "key": self.key,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "etag": self.etag,
            "media_type": self.media_type,
        }
        if with_data:
            out["data"] = None if self.data is None else self.data.decode("latin-1")
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Op:
        data = raw.get("data")
        return cls(
            action=Action(raw["action"]),
            key=raw["key"],
            before=raw.get("before"),
            after=raw.get("after"),
            reason=raw.get("reason", ""),
            data=None if data is None else str(data).encode("latin-1"),
            etag=raw.get("etag"),
            media_type=raw.get("media_type", "application/octet-stream"),
        )


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """What an adapter may use when it applies: the release, who we are, a summary line."""

    release: str
    owner: str
    summary: str = ""
    distribution: str = ""


@dataclass(frozen=True, slots=True)
class OpResult:
    """The outcome of one applied op. ``changed`` is False when the target already matched."""

    key: str
    action: Action
    digest: str | None
    changed: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Health:
    status: HealthStatus
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Scope:
    """Where ``discover`` looks (the managed scope of a target)."""

    prefix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
