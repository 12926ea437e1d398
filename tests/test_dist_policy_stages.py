"""Policies at the post-transform, analysis and drift hook points."""

from __future__ import annotations

import asyncio
from pathlib import Path

from spokehub.distribution import service
from spokehub.distribution.demo.scenario import DIST
from tests.dist_support import AUTO_GATE, demo_hub, real_client, rollout


def with_policy(stage: str, expression: str, message: str) -> dict[str, str]:
    policy = (
        "---\napiVersion: spokehub.dev/v1alpha1\nkind: Policy\nmetadata: {name: extra}\n"
        f"spec:\n  stages: [{stage}]\n  validations:\n"
        f'    - {{expression: "{expression}", message: "{message}"}}\n---\n'
        "apiVersion: spokehub.dev/v1alpha1\nkind: Rollout"
    )
    return {
        **AUTO_GATE,
        "policies: [no-mass-deletes]": "policies: [no-mass-deletes, extra]",
        "---\napiVersion: spokehub.dev/v1alpha1\nkind: Rollout": policy,
    }


def test_post_transform_policy_sees_the_artifacts(sqlite_url: str, tmp_path: Path) -> None:
    client = real_client(sqlite_url)
    try:
        edit = with_policy("post-transform", "artifact.count <= 2", "at most 2 files per target")
        with demo_hub(tmp_path, edit=edit) as (hub, _, _):
            result = rollout(client, hub, "r1")
    finally:
        client.close()
    assert result["status"] == "RolledBack"
    assert "cms-staging: policy denied: extra: at most 2 files per target" in result["reason"]


def test_analysis_policy_can_stop_a_promotion(sqlite_url: str, tmp_path: Path) -> None:
    client = real_client(sqlite_url)
    try:
        edit = with_policy("analysis", "measurements.phases.size() >= 5", "need 5 measurements")
        with demo_hub(tmp_path, edit=edit) as (hub, _, _):
            result = rollout(client, hub, "r1")
    finally:
        client.close()
    assert result["status"] == "RolledBack"
    assert "policy denied: extra: need 5 measurements" in result["reason"]
    assert result["rolled_back"] == ["docs", "cms-staging"]


def test_drift_policy_turns_a_correction_into_an_alert(sqlite_url: str, tmp_path: Path) -> None:
    client = real_client(sqlite_url)
    try:
        edit = with_policy("drift", "!drift.target.startsWith('web')", "web is hand-managed now")
        with demo_hub(tmp_path, edit=edit) as (hub, _, _):
            assert rollout(client, hub, "r1")["status"] == "Succeeded"
            css = hub / "targets/web/dist/tokens.css"
            css.write_text(css.read_text() + "/* hand */\n")
            reports = asyncio.run(service.drift(client, hub, DIST))
            left = css.read_text()
    finally:
        client.close()
    web = next(r for r in reports if r.target == "web")
    assert web.corrected == []
    assert "policy: extra: web is hand-managed now" in web.mode
    assert left.endswith("/* hand */\n")
