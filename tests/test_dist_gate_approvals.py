"""Manual rollout gates are approvals with the full lifecycle: assignees, quorum, timeouts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from spokehub.distribution import audit, inventory, service
from spokehub.distribution.demo.scenario import DIST
from spokehub.errors import SpokehubError
from tests.dist_support import demo_hub, real_client

BROAD = '    - {name: broad, targets: {matchLabels: {ring: "1"}}, maxConcurrent: 50%, gate: manual}'


def broad_gate(approval: str, extra: str = "") -> dict[str, str]:
    return {
        BROAD: '    - {name: broad, targets: {matchLabels: {ring: "1"}}, maxConcurrent: 50%, '
        f"gate: manual{extra}, approval: {approval}}}"
    }


def test_a_gate_needs_its_quorum_of_named_approvers(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    edit = broad_gate("{assignees: [alice, bob], quorum: 2}")

    async def go(hub: Path) -> tuple[object, list[str]]:
        handle = await service.start_rollout(client, hub, DIST, "r1")
        run = await service.drive(client, handle.id)
        assert service.pending_approval(run) == "promote:broad"
        with pytest.raises(SpokehubError, match="mallory"):
            await client.approve_async(handle.id, name="promote:broad", by="mallory")
        await client.approve_async(handle.id, name="promote:broad", by="alice")
        run = await service.drive(client, handle.id)
        assert service.pending_approval(run) == "promote:broad"  # one of two approvals
        await client.approve_async(handle.id, name="promote:broad", by="bob")
        run = await service.drive(client, handle.id)
        gates = await audit.entries(client.store, distribution=DIST, release="r1")
        by = [e.detail.get("approvers") for e in gates if e.kind == "gate"]
        proms = await inventory.promotions(client.store, DIST)
        assert [p["run_id"] for p in proms] == [handle.id]  # the promotion names its run
        return run, by

    try:
        with demo_hub(tmp_path, edit=edit) as (hub, _, _):
            run, approvers = asyncio.run(go(hub))
    finally:
        client.close()
    assert run.result["status"] == "Succeeded", run.result  # type: ignore[attr-defined]
    assert approvers == [["alice", "bob"]]


def test_a_gate_nobody_decides_in_time_rejects_and_rolls_back(
    sqlite_url: str, tmp_path: Path
) -> None:
    client = real_client(sqlite_url)
    edit = broad_gate("{assignees: [alice], onTimeout: reject}", ", gateTimeout: 1s")

    async def go(hub: Path) -> object:
        handle = await service.start_rollout(client, hub, DIST, "r1")
        # Nobody answers: the worker sleeps on the approval's timer, which rejects it.
        return await service.drive(client, handle.id)

    try:
        with demo_hub(tmp_path, edit=edit) as (hub, _, _):
            run = asyncio.run(go(hub))
    finally:
        client.close()
    result = run.result  # type: ignore[attr-defined]
    assert result["status"] == "RolledBack", result
    assert "promote:broad" in result["reason"]
    assert "expired" in result["reason"]
    assert result["rolled_back"]  # the canary and the broad wave's targets went back


def test_bad_approval_settings_are_refused_with_their_line(tmp_path: Path) -> None:
    from spokehub.distribution.errors import ManifestError

    with (
        demo_hub(tmp_path, edit=broad_gate("{quorum: 0}")) as (hub, _, _),
        pytest.raises(ManifestError, match=r"hub\.yaml:\d+.*quorum"),
    ):
        service.context_for(str(hub), DIST)
