"""Policy hook points on real runs (SQLite and PostgreSQL): start, steps, gates; every decision
in the run's ledger with its digests; denials stop with PolicyDenied; a gate replays as decided."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spokehub import Client, RetryPolicy, step, workflow
from spokehub.engine.events import EventKind
from spokehub.errors import PolicyDenied, RunFailed
from spokehub.governance import (
    Policies,
    PolicyDecision,
    PolicyInterceptor,
    PolicySource,
    load_policy_texts,
    policy_gate,
)
from spokehub.governance.decisions import decisions_in
from spokehub.testing import FakeClock, run_until_idle

POLICIES = """
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: small-orders}
spec:
  validations:
    - expression: object.input.amount <= params.max
      messageExpression: "'amount ' + string(object.input.amount) + ' over ' + string(params.max)"
      reason: Forbidden
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: start-limit}
spec:
  policyName: small-orders
  match: {hooks: [run.start], workflows: [gov_order]}
  actions: [Deny]
  params: {max: 100}
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: start-warn}
spec:
  policyName: small-orders
  match: {hooks: [run.start], workflows: [gov_order]}
  actions: [Warn]
  params: {max: 10}
---
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: no-prod-charges}
spec:
  validations:
    - expression: object.args.account != 'prod'
      message: charging the prod account is not allowed
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: charge-guard}
spec:
  policyName: no-prod-charges
  match: {hooks: [step], names: ["gov_charge*"]}
  actions: [Deny]
---
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: freeze}
spec:
  validations:
    - expression: "!object.frozen"
      message: release freeze
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: freeze-gate}
spec:
  policyName: freeze
  match: {hooks: [gate], names: [release]}
  actions: [Deny]
"""

ATTEMPTS: list[str] = []


@step(retry=RetryPolicy(max_attempts=3, initial_delay=0))
async def gov_charge(account: str, amount: int) -> str:
    ATTEMPTS.append(account)
    return f"charged {account} {amount}"


@step
async def gov_note(text: str) -> str:
    return text


@workflow
async def gov_order(account: str, amount: int) -> str:
    await gov_note("begin")
    return await gov_charge(account, amount)


@workflow
async def gov_release(frozen: bool) -> dict[str, Any]:
    decision = await policy_gate("release", {"frozen": frozen})
    await gov_note("released")
    return {"decision": decision.decision}


@workflow
async def gov_release_caught(frozen: bool) -> str:
    try:
        await policy_gate("release", {"frozen": frozen})
    except PolicyDenied as exc:
        return f"held: {exc.violations[0]['message']}"
    return "released"


def governed(client: Client, text: str = POLICIES) -> Policies:
    policies = Policies(load_policy_texts([("p.yaml", text)]), clock=client.clock)
    client.interceptors = (*client.interceptors, PolicyInterceptor(policies))
    return policies


def decisions(client: Client, run_id: str) -> list[dict[str, Any]]:
    return decisions_in(client.events(run_id))


def test_start_denied_stores_nothing_and_allowed_start_records_its_decision(client: Client) -> None:
    governed(client)
    with pytest.raises(PolicyDenied, match="amount 500 over 100") as info:
        client.start(gov_order.options(run_id="big"), "dev", 500)
    assert info.value.violations[0]["binding"] == "start-limit"
    assert info.value.code == "policy_denied"
    assert client.list_runs() == []
    handle = client.start(gov_order.options(run_id="mid"), "dev", 50)
    run_until_idle(client)
    assert handle.result() == "charged dev 50"
    events = client.events("mid")
    assert events[1].kind is EventKind.POLICY_DECIDED  # right after run_started
    recorded = PolicyDecision.from_dict(events[1].data)
    assert recorded.decision == "warn"
    assert recorded.messages("warn") == ["small-orders: amount 50 over 10"]
    assert recorded.input_digest.startswith("sha256:")
    assert {r.binding for r in recorded.results} == {"start-limit", "start-warn"}
    assert all(r.policy_digest.startswith("sha256:") for r in recorded.results)


def test_step_denial_fails_the_run_with_policy_denied_and_no_retry(client: Client) -> None:
    governed(client)
    ATTEMPTS.clear()
    handle = client.start(gov_order.options(run_id="prod-charge"), "prod", 5)
    run_until_idle(client)
    with pytest.raises(RunFailed) as info:
        handle.result()
    assert ATTEMPTS == []  # refused before it ran, once (a denial is not retried)
    run = client.get_run("prod-charge")
    assert run.error is not None
    assert run.error["code"] == "policy_denied"
    assert "charging the prod account is not allowed" in run.error["message"]
    assert "policy_denied" in str(info.value.error)
    found = decisions(client, "prod-charge")
    step_decisions = [d for d in found if d["hook"] == "step"]
    assert len(step_decisions) == 1
    assert step_decisions[0]["decision"] == "deny"
    assert step_decisions[0]["subject"]["name"] == "gov_charge"
    failed = [e for e in client.events("prod-charge") if e.kind is EventKind.STEP_FAILED]
    assert failed[0].data["attempts"] == 1


def test_allowed_step_is_recorded_and_unbound_steps_are_not(client: Client) -> None:
    governed(client)
    ATTEMPTS.clear()
    handle = client.start(gov_order.options(run_id="dev-charge"), "dev", 5)
    run_until_idle(client)
    assert handle.result() == "charged dev 5"
    assert ATTEMPTS == ["dev"]
    steps = [d for d in decisions(client, "dev-charge") if d["hook"] == "step"]
    assert [d["decision"] for d in steps] == ["allow"]  # gov_note matched no binding
    assert steps[0]["seq"] == 2  # recorded with the step it judged
    completed = [e for e in client.events("dev-charge") if e.kind is EventKind.STEP_COMPLETED]
    assert completed[1].data["notes"][0]["kind"] == "policy_decided"  # no extra ledger row
    assert "notes" not in completed[0].data  # gov_note: no binding, nothing recorded


def test_gate_allows_denies_and_can_be_caught(client: Client) -> None:
    governed(client)
    ok = client.start(gov_release.options(run_id="r-ok"), False)
    held = client.start(gov_release.options(run_id="r-held"), True)
    caught = client.start(gov_release_caught.options(run_id="r-caught"), True)
    run_until_idle(client)
    assert ok.result() == {"decision": "allow"}
    with pytest.raises(RunFailed, match="release freeze"):
        held.result()
    assert client.get_run("r-held").error["code"] == "policy_denied"  # type: ignore[index]
    assert caught.result() == "held: release freeze"
    gate = [d for d in decisions(client, "r-held") if d["hook"] == "gate"]
    assert gate[0]["decision"] == "deny"
    assert gate[0]["subject"]["name"] == "release"


def test_gate_replays_its_recorded_decision_after_the_policies_change(
    tmp_path: Path, clock: FakeClock
) -> None:
    from spokehub import Settings, approval

    @workflow(name="gov_gate_then_wait")
    async def gate_then_wait() -> str:
        await policy_gate("release", {"frozen": True})
        await approval("go")
        return "done"

    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    permissive = POLICIES.replace('"!object.frozen"', "'true'")
    (policy_dir / "p.yaml").write_text(permissive)
    with Client(settings=Settings(database_url=db, policy_dir=str(policy_dir)), clock=clock) as c:
        from spokehub.governance.wiring import govern

        govern(c)
        c.start(gate_then_wait.options(run_id="g1"))
        run_until_idle(c)
        (policy_dir / "p.yaml").write_text(POLICIES)  # now the gate would deny
    with Client(settings=Settings(database_url=db, policy_dir=str(policy_dir)), clock=clock) as c:
        govern(c)
        c.approve("g1")
        run_until_idle(c)
        assert c.handle("g1").result() == "done"  # replayed the recorded allow
        gates = [d for d in decisions(c, "g1") if d["hook"] == "gate"]
        assert [d["decision"] for d in gates] == ["allow"]


def test_gate_without_policies_fails_closed(client: Client) -> None:
    handle = client.start(gov_release.options(run_id="nobody"), False)
    run_until_idle(client)
    with pytest.raises(RunFailed, match="no policy set is loaded"):
        handle.result()


def test_policy_source_swaps_a_changed_set_into_a_running_interceptor(
    client: Client, tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(POLICIES)
    source = PolicySource(tmp_path, check_every=0)
    client.interceptors = (*client.interceptors, PolicyInterceptor(source))
    with pytest.raises(PolicyDenied):
        client.start(gov_order.options(run_id="a"), "dev", 500)
    (tmp_path / "p.yaml").write_text(POLICIES.replace("max: 100", "max: 1000"))
    client.start(gov_order.options(run_id="a"), "dev", 500)
    (tmp_path / "p.yaml").write_text("not: [valid")
    with pytest.raises(PolicyDenied):  # the last good set (max 1000) still holds
        client.start(gov_order.options(run_id="b"), "dev", 5000)
    assert source.last_error is not None


LABELLED = """
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: no-http-in-tests}
spec:
  validations:
    - expression: "!object.args.url.startsWith('http://')"
      message: plain http is not allowed
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: http-calls}
spec: {policyName: no-http-in-tests, match: {hooks: [step], labels: [http]}, actions: [Deny]}
---
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: payments-need-actor}
spec:
  validations:
    - expression: object.actor != null && 'payments' in object.labels
      message: payments runs need an actor
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: payments-start}
spec:
  policyName: payments-need-actor
  match: {hooks: [run.start], labels: ["pay*"]}
  actions: [Deny]
"""


@step(labels=["http", "outbound"])
async def gov_fetch(url: str) -> str:
    return f"fetched {url}"


@step
async def gov_fetch_unlabelled(url: str) -> str:
    return f"fetched {url}"


@workflow(labels=["payments"])
async def gov_labelled(url: str) -> str:
    other = await gov_fetch_unlabelled(url)
    return other + " / " + await gov_fetch(url)


def test_bindings_match_step_and_workflow_labels(client: Client) -> None:
    governed(client, LABELLED)
    with pytest.raises(PolicyDenied, match="payments runs need an actor"):
        client.start(gov_labelled.options(run_id="l0"), "https://a")
    from spokehub import ops

    async def start(run_id: str, url: str) -> None:
        await ops.start_run(client, gov_labelled, {"url": url}, run_id=run_id, actor="alice")

    import asyncio

    asyncio.run(start("l1", "https://example.org"))
    asyncio.run(start("l2", "http://example.org"))
    run_until_idle(client)
    assert (
        client.handle("l1").result() == "fetched https://example.org / fetched https://example.org"
    )
    with pytest.raises(RunFailed, match="plain http is not allowed"):
        client.handle("l2").result()
    steps = [d for d in decisions(client, "l2") if d["hook"] == "step"]
    assert [(d["subject"]["name"], d["decision"]) for d in steps] == [("gov_fetch", "deny")]
    start_decision = decisions(client, "l1")[0]
    assert start_decision["hook"] == "run.start"
    assert start_decision["subject"]["actor"] == "alice"


def test_labels_must_be_strings() -> None:
    from spokehub.errors import RegistrationError

    with pytest.raises(RegistrationError, match="labels is a list of non-empty strings"):

        @step(labels="http")  # type: ignore[arg-type]
        async def bad_labels() -> None: ...
