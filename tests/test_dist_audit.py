"""The distribution's records are entries of the governance audit chain (``audit_log``).

A real rollout (manual gate approved) and a real drift check on both backends; the chain is
then checked with ``spokehub audit verify`` and ``spokehub audit export`` as an operator would.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from spokehub import Client
from spokehub.cli.app import app
from spokehub.distribution import audit, service
from spokehub.distribution.demo.scenario import DIST
from spokehub.governance.redaction import REDACTOR
from tests.dist_support import demo_hub, real_client

runner = CliRunner()


def cli(db: str, *args: str, code: int = 0) -> Result:
    result = runner.invoke(app, ["--db", db, *args], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result


def rollout_run(client: Client, hub: Path, rel: str) -> tuple[str, dict[str, Any]]:
    """Roll ``rel`` out, approving the manual gate; the run id and the run's result."""

    async def go() -> tuple[str, dict[str, Any]]:
        handle = await service.start_rollout(client, hub, DIST, rel)

        async def gate(name: str, run: Any) -> bool:
            return True

        run = await service.drive(client, handle.id, gate)
        assert isinstance(run.result, dict), run
        return handle.id, run.result

    return asyncio.run(go())


def sql(client: Client, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    async def go() -> list[Any]:
        return await client.store.transact(
            lambda tx: list(tx.execute(statement, params).fetchall())
        )

    return asyncio.run(go())


def write(client: Client, statement: str, params: tuple[Any, ...]) -> None:
    async def go() -> None:
        await client.store.transact(lambda tx: tx.execute(statement, params))

    asyncio.run(go())


def subsequence(wanted: list[str], kinds: list[str]) -> bool:
    rest = iter(kinds)
    return all(kind in rest for kind in wanted)


def test_a_rollout_and_its_drift_are_entries_of_the_one_chain(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path) as (hub, _, _):
            run_id, result = rollout_run(client, hub, "r1")
            assert result["status"] == "Succeeded", result
            timeline = asyncio.run(audit.entries(client.store, distribution=DIST, release="r1"))
            css = hub / "targets/web/dist/tokens.css"
            css.write_text(css.read_text() + "/* someone else's edit */\n")
            reports = asyncio.run(service.drift(client, hub, DIST))
            assert any(r.target == "web" and r.drifted() for r in reports)
            everything = asyncio.run(audit.entries(client.store, distribution=DIST))
        dist_rows = sql(client, "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'dist.%'")
        old_rows = sql(client, "SELECT COUNT(*) FROM dist_audit")
    finally:
        client.close()

    # the release's timeline: the rollout's events in order, all stamped with its run id
    kinds = [e.kind for e in timeline]
    assert kinds[0] == "policy", kinds
    assert kinds[-1] == "promotion.finished", kinds
    # wave 1: plan, pre-apply policy, apply, analysis; wave 2 (manual gate): plan, apply, gate
    wave_by_wave = ["promotion.started", "plan", "policy", "apply", "measurement", "analysis"]
    assert subsequence([*wave_by_wave, "plan", "apply", "gate", "promotion.finished"], kinds), kinds
    assert [e.seq for e in timeline] == sorted(e.seq for e in timeline)
    assert {e.run_id for e in timeline} == {run_id}
    assert timeline[-1].detail["status"] == "Succeeded"
    gate = next(e for e in timeline if e.kind == "gate")
    assert gate.detail["approved"] is True
    applies = {e.target for e in timeline if e.kind == "apply"}
    assert {"web", "docs"} <= applies
    assert set(timeline[0].to_dict()) >= {
        "seq", "at", "distribution", "release", "target", "kind", "detail", "hash"
    }  # fmt: skip

    # drift: in the same chain, after the rollout, outside any run
    drift = [e for e in everything if e.kind == "drift"]
    assert drift, [e.kind for e in everything]
    assert drift[0].target == "web"
    assert drift[0].run_id is None
    assert drift[0].seq > timeline[-1].seq
    assert "dist/tokens.css" in json.dumps(drift[0].detail)
    assert dist_rows[0][0] == len(everything)
    assert old_rows[0][0] == 0  # the released dist_audit table is no longer written

    # the operator's CLI sees one chain holding them all
    found = json.loads(cli(db_url, "audit", "verify", "--json").output)
    assert found["ok"] is True
    assert found["entries"] >= len(everything) > 20
    text = cli(db_url, "audit", "verify").output
    assert f"ok: {found['entries']} entries" in text
    exported = [
        json.loads(line)
        for line in cli(db_url, "audit", "export", "--action", "dist.").output.splitlines()
    ]
    assert [e["seq"] for e in exported] == [e.seq for e in everything]
    assert exported[-1]["action"] == "dist.drift"
    assert exported[-1]["details"]["distribution"] == DIST
    assert exported[-1]["details"]["target"] == "web"
    of_run = cli(db_url, "audit", "export", "--run", run_id).output.splitlines()
    assert [json.loads(line)["seq"] for line in of_run] == [e.seq for e in timeline]
    assert "valid" in cli(db_url, "dist", "audit", DIST, "--verify").output


def test_editing_one_dist_entry_makes_verify_name_it(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path) as (hub, _, _):
            assert rollout_run(client, hub, "r1")[1]["status"] == "Succeeded"
        assert json.loads(cli(db_url, "audit", "verify", "--json").output)["ok"] is True
        seq, details = sql(
            client,
            "SELECT seq, details FROM audit_log WHERE action = 'dist.apply' ORDER BY seq LIMIT 1",
        )[0]
        forged = json.loads(details)
        forged["target"] = "somewhere-else"
        write(
            client,
            "UPDATE audit_log SET details = ? WHERE seq = ?",
            (json.dumps(forged, sort_keys=True, separators=(",", ":")), seq),
        )
    finally:
        client.close()
    broken = cli(db_url, "audit", "verify", code=1).output
    assert f"BROKEN at entry {seq}: entry {seq} (dist.apply) was edited" in broken
    assert f"{seq - 1} entries verified before it" in broken
    found = json.loads(cli(db_url, "audit", "verify", "--json", code=1).output)
    assert found["bad_seq"] == seq
    dist_verify = cli(db_url, "dist", "audit", DIST, "--verify", code=1).output
    assert f"BROKEN: entry {seq} (dist.apply) was edited" in dist_verify


def test_a_secret_in_a_dist_record_never_reaches_the_trail(db_url: str) -> None:
    secret = "dist-audit-s3cret-9f2c1e"
    REDACTOR.add("dist_audit_token", secret)
    client = real_client(db_url)
    try:
        asyncio.run(client.ensure_schema())
        asyncio.run(
            audit.append(
                client.store,
                at=1_700_000_000.0,
                distribution=DIST,
                release="r9",
                kind="gate",
                detail={"reason": f"webhook said no to Bearer {secret}", "ratio": float("nan")},
                target="web",
            )
        )
        (entry,) = asyncio.run(audit.entries(client.store, distribution=DIST, release="r9"))
        raw = sql(client, "SELECT action, details, at, run_id FROM audit_log")
        verified = asyncio.run(audit.verify(client.store))
    finally:
        client.close()
    assert entry.detail["reason"] == "webhook said no to Bearer [secret:dist_audit_token]"
    assert entry.detail["ratio"] == "NaN"
    assert entry.at == 1_700_000_000.0
    assert entry.run_id is None
    assert raw[0][0] == "dist.gate"
    assert raw[0][2] == 1_700_000_000.0
    assert secret not in raw[0][1]
    assert verified == (True, 1, "")
