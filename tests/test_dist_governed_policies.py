"""The worker's governance policy set decides at the distribution hook points too."""

from __future__ import annotations

import asyncio
from pathlib import Path

from spokehub import Client
from spokehub.governance import AuditLog
from spokehub.governance.wiring import govern
from tests.dist_support import AUTO_GATE, demo_hub, real_client, rollout

POLICY = """\
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: cms-small-batches}
spec:
  validations:
    - expression: object.plan.counts.create <= params.most
      messageExpression: "'at most ' + string(params.most) + ' new entries per rollout'"
      reason: BlastRadius
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: cms-prod}
spec:
  policyName: cms-small-batches
  match:
    hooks: [distribution.pre-apply]
    names: ["cms-*"]
  actions: [%s]
  params: {most: 2}
"""


def governed(db_url: str, tmp: Path, action: str) -> Client:
    folder = tmp / "policies"
    folder.mkdir()
    (folder / "cms.yaml").write_text(POLICY % action)
    client = real_client(db_url)
    assert govern(client, policy_dir=folder) is not None
    return client


def decisions(client: Client) -> list[dict[str, object]]:
    log = AuditLog(client.store, client.clock)
    found = asyncio.run(log.entries(action="policy.decision"))
    return [e.details for e in found]


def test_an_organisation_policy_denies_a_distribution_stage(db_url: str, tmp_path: Path) -> None:
    client = governed(db_url, tmp_path, "Deny")
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, cms, _):
            result = rollout(client, hub, "r1")
            writes = cms.state.writes
        found = decisions(client)
    finally:
        client.close()
    assert result["status"] in ("RolledBack", "Failed"), result
    assert (
        "cms-staging: policy denied: cms-small-batches: at most 2 new entries" in (result["reason"])
    )
    assert writes == 0  # denied before anything was applied to the CMS
    hooks = {(d["hook"], d["subject"]["name"], d["decision"]) for d in found}  # type: ignore[index]
    assert ("distribution.pre-apply", "cms-staging", "deny") in hooks
    # Targets the binding does not name are not decided by it (nothing recorded for them).
    assert not any(name == "web" for _, name, _ in hooks)


def test_a_warn_binding_is_recorded_but_lets_the_rollout_through(
    sqlite_url: str, tmp_path: Path
) -> None:
    client = governed(sqlite_url, tmp_path, "Warn")
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _):
            result = rollout(client, hub, "r1")
        found = decisions(client)
    finally:
        client.close()
    assert result["status"] == "Succeeded", result
    assert any(d["decision"] == "warn" for d in found)


DRIFT_POLICY = """\
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: hands-off-web}
spec:
  validations:
    - expression: "false"
      message: web is hand-managed this week
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: hands-off-web}
spec:
  policyName: hands-off-web
  match: {hooks: [distribution.drift], names: [web]}
"""


def test_an_organisation_policy_turns_a_drift_correction_into_an_alert(
    sqlite_url: str, tmp_path: Path
) -> None:
    from spokehub.distribution import drift_schedule
    from spokehub.distribution.demo.scenario import DIST

    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "drift.yaml").write_text(DRIFT_POLICY)
    client = real_client(sqlite_url)
    govern(client, policy_dir=folder)
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _):
            assert rollout(client, hub, "r1")["status"] == "Succeeded"
            css = hub / "targets/web/dist/tokens.css"
            css.write_text(css.read_text() + "/* hand */\n")
            run = asyncio.run(drift_schedule.check_now(client, hub, DIST))
            left = css.read_text()
        found = decisions(client)
    finally:
        client.close()
    web = next(t for t in run.result["targets"] if t["target"] == "web")
    assert web["corrected"] == []
    assert "hands-off-web: web is hand-managed this week" in web["mode"]
    assert left.endswith("/* hand */\n")  # the correction was not made
    assert any(
        d["hook"] == "distribution.drift" and d["decision"] == "deny"  # type: ignore[index]
        for d in found
    )
