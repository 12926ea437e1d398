"""A rollout wave by wave, as far as it has got: read from its plan of waves and the audit
trail of the release, so it can be drawn while the rollout runs (and after).

``waves`` is pure. The waves come from the rollout's ``begin`` step (names, targets, gate);
the audit entries after the latest ``promotion.started`` say what happened to each target
(planned, applied, failed, rolled back), each analysis verdict and each gate decision.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["FAILED", "latest_attempt", "target_states", "waves"]

PENDING = "Pending"
PLANNED = "Planned"
APPLIED = "Applied"
UNCHANGED = "Unchanged"
FAILED = "Failed"
ROLLED_BACK = "RolledBack"


def latest_attempt(entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The entries of the latest rollout attempt of a release (from its last start)."""
    starts = [i for i, e in enumerate(entries) if e["kind"] == "promotion.started"]
    return list(entries[starts[-1] :]) if starts else list(entries)


def _changes(counts: Mapping[str, int]) -> int:
    return sum(n for action, n in counts.items() if action in ("create", "update", "delete"))


def target_states(entries: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for e in entries:
        name, detail = e["target"], e["detail"]
        if not name:
            continue
        cell = out.setdefault(name, {"state": PENDING, "changed": 0, "health": ""})
        if e["kind"] == "plan":
            planned = _changes(detail.get("counts", {}))
            cell.update(state=PLANNED if planned else UNCHANGED, planned=planned)
            if detail.get("error"):
                cell.update(state=FAILED, reason=str(detail["error"]))
        elif e["kind"] == "apply":
            health = str(detail.get("health", ""))
            failed = health == "Degraded"
            cell.update(
                state=FAILED if failed else APPLIED,
                changed=int(detail.get("changed", 0) or 0),
                health=health,
                reason=str(detail.get("reason", "")),
            )
        elif e["kind"] == "rollback":
            cell.update(state=ROLLED_BACK)
    return out


def _gate(
    wave: Mapping[str, Any],
    entries: Iterable[Mapping[str, Any]],
    waiting: Collection[str],
    reached_next: bool,
    finished: str | None,
) -> dict[str, Any]:
    name = f"promote:{wave['name']}"
    kind = str(wave.get("gate", "auto"))
    for e in entries:
        d = e["detail"]
        if e["kind"] == "gate" and (d.get("name") == name or d.get("wave") == wave["name"]):
            ok = bool(d.get("approved"))
            by = f" by {d['by']}" if d.get("by") else ""
            why = "" if ok else f": {d.get('reason', '')}"
            state = "Approved" if ok else "Refused"
            return {"kind": kind, "state": state, "text": f"{kind}{by}{why}"}
    if name in waiting:
        return {"kind": kind, "state": "Waiting", "text": "waiting for approval"}
    if reached_next or finished == "Succeeded":
        return {"kind": kind, "state": "Passed", "text": kind}
    return {"kind": kind, "state": PENDING, "text": kind}


def waves(
    plan: Sequence[Mapping[str, Any]],
    entries: Sequence[Mapping[str, Any]],
    *,
    status: str | None,
    waiting: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Each wave: its targets with their state, analysis verdicts, the gate, and a state.

    ``plan``: the waves (name, targets, gate); ``entries``: the release's audit entries (as
    ``to_dict()``); ``status``: the promotion status; ``waiting``: approvals the run waits on.
    """
    current = latest_attempt(entries)
    states = target_states(current)
    out: list[dict[str, Any]] = []
    for i, wave in enumerate(plan):
        names = list(wave.get("targets", []))
        later = {t for w in plan[i + 1 :] for t in w.get("targets", [])}
        reached_next = any(states.get(t, {}).get("state", PENDING) != PENDING for t in later)
        targets = [{"target": t, **states.get(t, {"state": PENDING, "changed": 0})} for t in names]
        analysis = [
            {
                "metric": e["detail"].get("metric", ""),
                "target": e["target"],
                "verdict": e["detail"].get("verdict", ""),
                "phases": list(e["detail"].get("phases", [])),
            }
            for e in current
            if e["kind"] == "analysis" and e["target"] in names
        ]
        gate = _gate(wave, current, waiting, reached_next, status)
        tstates = {t["state"] for t in targets}
        if FAILED in tstates or ROLLED_BACK in tstates or gate["state"] == "Refused":
            state = FAILED if FAILED in tstates or gate["state"] == "Refused" else ROLLED_BACK
        elif any(a["verdict"] == "Failed" for a in analysis):
            state = FAILED
        elif tstates <= {PENDING}:
            state = PENDING
        elif (
            tstates <= {APPLIED, UNCHANGED} and gate["state"] in ("Approved", "Passed")
        ) or reached_next:
            state = "Done"
        else:
            state = "Progressing"
        out.append(
            {
                "name": wave["name"],
                "state": state,
                "targets": targets,
                "analysis": analysis,
                "gate": gate,
            }
        )
    return out
