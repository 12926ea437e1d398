"""The pure parts of the distribution page: a matrix cell's state, and a rollout's waves read
from its plan of waves and the release's audit entries."""

from __future__ import annotations

from typing import Any

from spokehub.distribution import matrix, progress

HOLDS_R2 = {"release": "r2", "sync": "Synced"}


def cell(keys: list[str], **kw: Any) -> str:
    args: dict[str, Any] = {
        "release": "r2",
        "promotion": "Succeeded",
        "target": HOLDS_R2,
        "inventory": {"a", "b"},
        "drift": {},
    }
    return matrix.cell_state(keys, **{**args, **kw})


def test_cell_states() -> None:
    assert cell([]) == matrix.NOT_DELIVERED
    assert cell(["a", "b"]) == matrix.IN_SYNC
    assert cell(["a"], drift={"a": "Modified"}) == matrix.MODIFIED
    assert cell(["a", "b"], drift={"a": "Modified", "b": "Missing"}) == matrix.MISSING
    assert cell(["a"], drift={"b": "Modified"}) == matrix.IN_SYNC  # another pattern's key
    assert cell(["c"]) == matrix.MISSING  # rendered for the target, not owned there
    assert cell(["c"], promotion="Progressing") == matrix.PROGRESSING
    assert cell(["a"], failed=True) == matrix.FAILED
    old = {"release": "r1", "sync": "Synced"}
    assert cell(["a"], target=old, promotion="Progressing") == matrix.PROGRESSING
    assert cell(["a"], target=old, promotion="RolledBack") == matrix.NOT_DELIVERED
    back = {"release": "r1", "sync": "RolledBack"}
    assert cell(["a"], target=back, promotion="RolledBack") == matrix.ROLLED_BACK


PLAN = [
    {"name": "canary", "targets": ["docs"], "gate": "auto"},
    {"name": "broad", "targets": ["web", "ios"], "gate": "manual"},
]


def entry(kind: str, target: str = "", **detail: Any) -> dict[str, Any]:
    return {"kind": kind, "target": target, "detail": detail}


def test_waves_follow_the_audit_trail() -> None:
    started = [entry("promotion.started")]
    assert [w["state"] for w in progress.waves(PLAN, started, status="Progressing")] == [
        "Pending",
        "Pending",
    ]
    canary_done = [
        *started,
        entry("plan", "docs", counts={"update": 1, "no-op": 2}),
        entry("apply", "docs", changed=1, health="Healthy"),
        entry("analysis", "docs", metric="smoke/ok@docs", verdict="Successful", phases=["S"]),
        entry("plan", "web", counts={"update": 1}),
        entry("plan", "ios", counts={"no-op": 1}),
        entry("apply", "web", changed=1, health="Healthy"),
    ]
    waves = progress.waves(PLAN, canary_done, status="Progressing", waiting=["promote:broad"])
    assert [w["state"] for w in waves] == ["Done", "Progressing"]
    assert waves[0]["analysis"][0]["verdict"] == "Successful"
    assert {t["target"]: t["state"] for t in waves[1]["targets"]} == {
        "web": "Applied",
        "ios": "Unchanged",
    }
    assert waves[1]["gate"]["state"] == "Waiting"
    approved = [*canary_done, entry("gate", name="promote:broad", approved=True, by="ann")]
    waves = progress.waves(PLAN, approved, status="Succeeded")
    assert [w["state"] for w in waves] == ["Done", "Done"]
    assert waves[1]["gate"]["text"] == "manual by ann"


def test_a_failed_wave_and_only_the_latest_attempt_counts() -> None:
    first = [
        entry("promotion.started"),
        entry("plan", "docs", counts={"update": 1}),
        entry("apply", "docs", changed=0, health="Degraded", reason="down"),
    ]
    waves = progress.waves(PLAN, first, status="Failed")
    assert [w["state"] for w in waves] == ["Failed", "Pending"]
    assert waves[0]["targets"][0]["reason"] == "down"
    rolled = [*first, entry("rollback", "docs")]
    assert progress.waves(PLAN, rolled, status="RolledBack")[0]["state"] == "RolledBack"
    retry = [*rolled, entry("promotion.started"), entry("plan", "docs", counts={"update": 1})]
    waves = progress.waves(PLAN, retry, status="Progressing")
    assert waves[0]["state"] == "Progressing"
    assert waves[0]["targets"][0]["state"] == "Planned"
