"""The audit trail: hash chain, tamper detection, concurrent writers, operator actions."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spokehub import Client, Settings, step, workflow
from spokehub.cli.app import app
from spokehub.governance.audit import GENESIS, AuditLog
from spokehub.governance.wiring import govern
from spokehub.ops import audit as ops_audit
from spokehub.store.base import Tx
from spokehub.testing import FakeClock, run_until_idle

runner = CliRunner()


def trail(client: Client) -> AuditLog:
    return ops_audit.audit_log(client)


def fill(client: Client, n: int = 5) -> None:
    async def go() -> None:
        await client.ensure_schema()
        for i in range(n):
            await trail(client).append(
                "test.action", actor=f"user{i % 2}", run_id=f"r{i}", details={"i": i}
            )

    asyncio.run(go())


def verify(client: Client):  # type: ignore[no-untyped-def]
    return asyncio.run(trail(client).verify())


def sql(client: Client, statement: str, params: tuple[object, ...] = ()) -> None:
    def run(tx: Tx) -> None:
        tx.execute(statement, params)

    asyncio.run(client.store.transact(run))


def test_chain_links_and_verifies(client: Client) -> None:
    fill(client)
    entries = asyncio.run(trail(client).entries())
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    result = verify(client)
    assert result.ok
    assert result.entries == 5
    assert result.head == entries[-1].hash
    assert [e.seq for e in asyncio.run(trail(client).entries(actor="user1"))] == [2, 4]
    assert [e.seq for e in asyncio.run(trail(client).entries(run_id="r3"))] == [4]
    assert len(asyncio.run(trail(client).entries(action="test."))) == 5


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "needle"),
    [
        ("UPDATE audit_log SET details = '{\"i\":99}' WHERE seq = 3", 3, "was edited"),
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2", 2, "was edited"),
        ("DELETE FROM audit_log WHERE seq = 3", 4, "entry 3 is missing"),
        # an inserted entry, renumbering the rest so the sequence has no gap
        ("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3", 103, "missing"),
    ],
)
def test_tampering_is_detected(client: Client, tamper: str, bad_seq: int, needle: str) -> None:
    fill(client)
    sql(client, tamper)
    result = verify(client)
    assert not result.ok
    assert result.bad_seq == bad_seq
    assert needle in (result.problem or "")


def test_insert_and_reorder_are_detected(client: Client) -> None:
    fill(client)
    entries = asyncio.run(trail(client).entries())
    # Insert: push entries 3.. up by one and put a forged entry at 3 with a valid-looking hash
    # of its own (the forger cannot make entry 4 link to it without rewriting 4's hash).
    sql(client, "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3")
    sql(client, "UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1003")
    from spokehub.engine.serde import canonical
    from spokehub.governance.audit import entry_hash

    body = {
        "seq": 3,
        "at": 1.0,
        "actor": "mallory",
        "action": "run.approve",
        "run_id": None,
        "details": {},
    }
    forged = entry_hash(entries[1].hash, body)
    sql(
        client,
        "INSERT INTO audit_log (seq, at, actor, action, run_id, details, prev_hash, hash) "
        "VALUES (3, 1.0, 'mallory', 'run.approve', NULL, ?, ?, ?)",
        (canonical({}), entries[1].hash, forged),
    )
    result = verify(client)
    assert not result.ok
    assert result.bad_seq == 4  # the first genuine entry after the forgery no longer links
    assert "does not link" in (result.problem or "")


def test_reorder_is_detected(client: Client) -> None:
    fill(client)
    sql(client, "UPDATE audit_log SET seq = 100 WHERE seq = 2")
    sql(client, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    sql(client, "UPDATE audit_log SET seq = 3 WHERE seq = 100")
    result = verify(client)
    assert not result.ok
    assert result.bad_seq == 2
    assert "does not link" in (result.problem or "")


def test_four_concurrent_writers_keep_one_linear_chain(pg_url: str) -> None:
    per_writer = 40
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with Client(settings=Settings(database_url=pg_url)) as c:

                async def go() -> None:
                    await c.ensure_schema()
                    log = trail(c)
                    for i in range(per_writer):
                        await log.append("test.concurrent", actor=f"w{n}", details={"i": i})

                asyncio.run(go())
        except BaseException as exc:  # reported below
            errors.append(exc)

    with Client(settings=Settings(database_url=pg_url)) as c:
        c.list_runs()  # migrate once before the writers race
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Client(settings=Settings(database_url=pg_url)) as c:
        result = verify(c)
        assert result.ok, result
        assert result.entries == 4 * per_writer
        entries = asyncio.run(trail(c).entries())
        assert {e.actor for e in entries} == {"w0", "w1", "w2", "w3"}


@step
async def audited_step(x: int) -> int:
    return x + 1


@workflow
async def audited_flow(x: int) -> int:
    return await audited_step(x)


def test_cli_actions_and_policy_decisions_are_audited(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(
        """apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: small}
spec:
  validations:
    - expression: object.input.x < 10
      message: x too large
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: small-start}
spec:
  policyName: small
  match: {hooks: [run.start]}
  actions: [Warn]
"""
    )
    with Client(
        settings=Settings(database_url=db, policy_dir=str(policies)), clock=FakeClock()
    ) as c:
        govern(c)
        from spokehub import ops

        async def go() -> None:
            await ops.start_run(c, audited_flow, {"x": 20}, run_id="a1", actor="alice")
            await ops.cancel(c, "a1", actor="bob")
            created = await ops.tokens.create_token(c, name="ci", role="operator", actor="admin")
            await ops.tokens.revoke_token(c, created.record.id, actor="admin")

        import spokehub.ops.tokens  # noqa: F401 - the attribute access above

        asyncio.run(go())
        run_until_idle(c)
        entries = asyncio.run(trail(c).entries())
    actions = [(e.action, e.actor) for e in entries]
    assert ("policy.decision", "alice") in actions
    assert ("run.start", "alice") in actions
    assert ("run.cancel", "bob") in actions
    assert ("token.create", "admin") in actions
    assert ("token.revoke", "admin") in actions
    decision = next(e for e in entries if e.action == "policy.decision")
    assert decision.details["decision"] == "warn"
    assert decision.run_id == "a1"
    # the CLI: verify and export
    result = runner.invoke(app, ["--db", db, "audit", "verify"])
    assert result.exit_code == 0, result.output
    assert f"ok: {len(entries)} entries" in result.output
    result = runner.invoke(
        app, ["--db", db, "audit", "export", "--since", "3650d", "--actor", "bob"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["action"] for line in lines] == ["run.cancel"]
    result = runner.invoke(app, ["--db", db, "tokens", "create", "--role", "viewer", "--name", "x"])
    assert result.exit_code == 0, result.output
    last = asyncio.run(_entries(db))[-1]
    assert last.action == "token.create"
    assert last.actor.startswith("local:")  # the CLI's operating-system user
    with Client(settings=Settings(database_url=db)) as c:
        sql(c, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    result = runner.invoke(app, ["--db", db, "audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at entry 2" in result.output
    result = runner.invoke(app, ["--db", db, "audit", "export", "--format", "csv"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["--db", db, "audit", "export", "--since", "yesterday"])
    assert result.exit_code == 2


async def _entries(db: str):  # type: ignore[no-untyped-def]
    c = Client(settings=Settings(database_url=db))
    try:
        await c.ensure_schema()
        return await trail(c).entries()
    finally:
        await c.close_async()


@workflow
async def audited_approval() -> str:
    from spokehub import approval

    decision = await approval("ship")
    return f"shipped by {decision.by}"


APPROVAL_POLICY = """apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: four-eyes}
spec:
  validations:
    - expression: object.by != 'mallory'
      message: mallory may not decide approvals
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: approvals}
spec: {policyName: four-eyes, match: {hooks: [approval]}, actions: [Deny]}
"""


def test_approval_hook_and_policy_set_changes_are_audited(tmp_path: Path) -> None:
    from spokehub import ops
    from spokehub.errors import PolicyDenied
    from spokehub.governance.wiring import policies_of

    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "p.yaml").write_text(APPROVAL_POLICY)
    with Client(
        settings=Settings(database_url=db, policy_dir=str(policy_dir)), clock=FakeClock()
    ) as c:
        policies = govern(c)
        assert policies is not None
        assert policies_of(c) is policies
        assert govern(Client(settings=Settings(database_url=db))) is None  # no directory

        async def go() -> None:
            await ops.start_run(c, audited_approval, {}, run_id="ap1", actor="alice")
            await c.execute_async("ap1", until_waiting=True)
            with pytest.raises(PolicyDenied, match="mallory may not decide"):
                await ops.approve(c, "ap1", by="mallory")
            await ops.approve(c, "ap1", by="bob")
            # a changed policy set, picked up inside the event loop, is audited
            (policy_dir / "p.yaml").write_text(APPROVAL_POLICY.replace("mallory'", "eve'"))
            policies.source.check_every = 0
            policies.source.current()
            from spokehub.governance.wiring import _pending

            await asyncio.gather(*_pending)  # the audit append is a task of this loop

        asyncio.run(go())
        run_until_idle(c)
        assert c.handle("ap1").result() == "shipped by bob"
        entries = asyncio.run(trail(c).entries())
    decisions = [e.details["decision"] for e in entries if e.action == "policy.decision"]
    assert decisions == ["deny", "allow"]
    assert [e.actor for e in entries if e.action == "run.approve"] == ["bob"]
    changed = [e for e in entries if e.action == "policy.set_changed"]
    assert len(changed) == 1
    assert changed[0].details["policies"] == ["four-eyes"]
    assert changed[0].details["digest"] != changed[0].details["from"]


def test_mentions_narrows_by_stored_details_with_like_wildcards_taken_literally(
    client: Client,
) -> None:
    async def go() -> list[list[int]]:
        await client.ensure_schema()
        log = trail(client)
        for name in ("a_b", "axb", "a%b", "a_b"):
            await log.append("dist.x", details={"distribution": name, "n": 1})
        await log.append("dist.x", details={"detail": {"distribution": "axb"}})
        return [
            [e.seq for e in await log.entries(mentions={"distribution": name})]
            for name in ("a_b", "axb", "a%b", "zzz")
        ]

    a_b, axb, percent, none = asyncio.run(go())
    assert a_b == [1, 4]  # "_" is not a wildcard
    assert axb == [2, 5]  # a nested mention matches too: callers filter exactly
    assert percent == [3]
    assert none == []
