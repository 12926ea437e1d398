"""The distribution audit trail: entries of the governance audit chain (``audit_log``).

Every policy decision, plan, apply, measurement, gate, rollback, drift report, alert,
predictive decision and promotion start/finish is one entry of the same hash chain as the
operator actions (``spokehub.governance.audit.AuditLog``), so ``spokehub audit verify`` checks
them all and ``spokehub audit export --action dist.`` exports them. An entry's action is
``dist.<kind>`` (``dist.plan``, ``dist.apply``, ``dist.policy``, ``dist.drift``, ...); its
details are ``{"distribution", "release", "target", "detail"}``; its ``run_id`` is the rollout
run when a step of that run wrote it (drift checks and other calls outside a run have none).
Details pass through the secrets redactor before they are hashed and stored.

The ``dist_audit`` table of migration 0011 is no longer written (it stays, as released).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spokehub.governance.audit import AuditEntry as ChainEntry
from spokehub.governance.audit import AuditLog
from spokehub.governance.redaction import REDACTOR
from spokehub.runtime.clock import SystemClock
from spokehub.runtime.context import current_step
from spokehub.store import Store

__all__ = ["ACTION_PREFIX", "AuditEntry", "append", "entries", "verify"]

ACTION_PREFIX = "dist."


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One distribution entry of the governance chain, seen the distribution's way."""

    seq: int
    at: float
    distribution: str
    release: str
    target: str
    kind: str
    detail: dict[str, Any]
    run_id: str | None
    actor: str | None
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "distribution": self.distribution,
            "release": self.release,
            "target": self.target,
            "kind": self.kind,
            "detail": self.detail,
            "run_id": self.run_id,
            "hash": self.hash,
        }


class _At:
    """The clock of one entry: the time its caller says the event happened."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at


def _plain(detail: Mapping[str, Any]) -> dict[str, Any]:
    """Details as plain JSON: odd values as their text, NaN and infinities as strings."""
    text = json.dumps(dict(detail), default=str)
    plain: dict[str, Any] = json.loads(text, parse_constant=lambda name: name)
    return plain


def _log(store: Store, at: float | None = None) -> AuditLog:
    clock = SystemClock() if at is None else _At(at)
    return AuditLog(store, clock, redact=REDACTOR.value)


async def append(
    store: Store,
    *,
    at: float,
    distribution: str,
    release: str,
    kind: str,
    detail: Mapping[str, Any],
    target: str = "",
) -> str:
    """Append one ``dist.<kind>`` entry to the audit chain; returns its hash."""
    body = _plain(detail)
    step = current_step()
    actor = body.get("actor")
    entry = await _log(store, at).append(
        ACTION_PREFIX + kind,
        actor=actor if isinstance(actor, str) else None,
        run_id=step.run_id if step is not None else None,
        details={
            "distribution": distribution,
            "release": release,
            "target": target,
            "detail": body,
        },
    )
    return entry.hash


def _from_chain(entry: ChainEntry) -> AuditEntry | None:
    d = entry.details
    if not isinstance(d, dict) or not isinstance(d.get("distribution"), str):
        return None  # some other writer's dist.* action: not a distribution record
    detail = d.get("detail")
    return AuditEntry(
        seq=entry.seq,
        at=entry.at,
        distribution=d["distribution"],
        release=str(d.get("release") or ""),
        target=str(d.get("target") or ""),
        kind=entry.action[len(ACTION_PREFIX) :],
        detail=detail if isinstance(detail, dict) else {},
        run_id=entry.run_id,
        actor=entry.actor,
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )


async def entries(
    store: Store, *, distribution: str | None = None, release: str | None = None
) -> list[AuditEntry]:
    """The distribution's entries in chain order (optionally of one release only)."""
    found: list[AuditEntry] = []
    mentions: dict[str, Any] = {}
    if distribution is not None:
        mentions["distribution"] = distribution
    if release is not None:
        mentions["release"] = release
    # The store narrows by text (cheap, may over-match a nested detail); the checks below are
    # exact.
    for chained in await _log(store).entries(action=ACTION_PREFIX, mentions=mentions):
        entry = _from_chain(chained)
        if entry is None:
            continue
        if distribution is not None and entry.distribution != distribution:
            continue
        if release is not None and entry.release != release:
            continue
        found.append(entry)
    return found


async def verify(store: Store) -> tuple[bool, int, str]:
    """Recompute the whole governance chain: (ok, entries checked, first problem or '')."""
    found = await _log(store).verify()
    return found.ok, found.entries, found.problem or ""
