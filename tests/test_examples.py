"""The examples run as documented: happy paths, failures that compensate, and the approval flow.

Each example is imported by path under the module name the CLI gives it, then driven with the
public test kit (a FakeClock and ``run_until_idle``), so no test sleeps for real.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest.mock import ANY

import pytest

from spokehub import (
    Client,
    Event,
    EventKind,
    InvalidRunState,
    RunFailed,
    RunHandle,
    RunStatus,
)
from spokehub.runtime.definitions import REGISTRY
from spokehub.testing import FakeClock, run_until_idle

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as module ``name``, the way ``spokehub run`` does."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


order_saga = load("order_saga")
content_pipeline = load("content_pipeline")
self_healing_deploy = load("self_healing_deploy")


@pytest.fixture
def effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the examples' simulated services write their effects, one folder per test."""
    folder = tmp_path / "effects"
    monkeypatch.setenv("SPOKEHUB_EXAMPLE_EFFECTS", str(folder))
    return folder


@pytest.fixture(autouse=True)
def _example_llm() -> None:
    """The content pipeline's offline writer (other tests may have configured their own)."""
    content_pipeline.setup_llm()


def actions(effects: Path, service: str) -> list[str]:
    """The actions a simulated service performed, sorted."""
    files = sorted((effects / service).glob("*.json"))
    return sorted(json.loads(f.read_text())["action"] for f in files)


def of_kind(handle: RunHandle[Any], kind: EventKind) -> list[Event]:
    return [e for e in handle.events() if e.kind is kind]


def assert_compensated_in_reverse(handle: RunHandle[Any]) -> list[str]:
    """Every completed step with an undo was undone, newest first; return the undone names."""
    completed = [e for e in of_kind(handle, EventKind.STEP_COMPLETED) if e.data.get("compensate")]
    ran = of_kind(handle, EventKind.COMPENSATION_RAN)
    assert [e.seq for e in ran] == [e.seq for e in reversed(completed)]
    assert all(e.data["ok"] for e in ran)
    return [str(e.data["name"]) for e in ran]


def start_input(client: Client, wf: Any, data: dict[str, Any]) -> RunHandle[Any]:
    """Start from a JSON object of keyword arguments, as ``spokehub run --input`` does."""
    return asyncio.run(client.start_input_async(wf, data))


def test_examples_register_under_their_module_names() -> None:
    assert REGISTRY.workflow("order_saga") is order_saga.order_saga
    assert REGISTRY.workflow("content_pipeline") is content_pipeline.content_pipeline
    assert REGISTRY.workflow("self_healing_deploy") is self_healing_deploy.self_healing_deploy


# -- order_saga -------------------------------------------------------------------------------
def test_order_saga_default_input_ships_the_order(client: Client, effects: Path) -> None:
    handle = start_input(client, order_saga.order_saga, {})
    run_until_idle(client)

    receipt = handle.result()
    assert isinstance(receipt, order_saga.Receipt)
    assert receipt.total_cents == 2 * 1250
    names = [e.data["name"] for e in of_kind(handle, EventKind.STEP_COMPLETED)]
    assert names == ["reserve_stock", "charge_card", "book_shipment"]
    assert of_kind(handle, EventKind.COMPENSATION_RAN) == []
    assert actions(effects, "inventory") == ["reserve"]
    assert actions(effects, "payments") == ["charge"]
    assert actions(effects, "shipping") == ["book"]


def test_order_saga_lost_payment_answer_is_retried_and_charges_once(
    client: Client, effects: Path
) -> None:
    handle = client.start(order_saga.order_saga, card="flaky")
    run_until_idle(client)

    receipt = handle.result()
    charge_starts = [e for e in of_kind(handle, EventKind.STEP_STARTED) if e.seq == 2]
    assert [e.data["attempt"] for e in charge_starts] == [1, 2]
    assert len(of_kind(handle, EventKind.RETRY_SCHEDULED)) == 1
    # Both attempts sent the same idempotency key: one charge, and the receipt names it.
    charges = list((effects / "payments").glob("charge-*.json"))
    assert len(charges) == 1
    assert json.loads(charges[0].read_text())["id"] == receipt.charge_id


def test_order_saga_declined_card_is_not_retried_and_releases_the_stock(
    client: Client, effects: Path
) -> None:
    items = [{"sku": "lamp", "quantity": 1, "unit_cents": 4900}]
    handle = start_input(client, order_saga.order_saga, {"items": items, "card": "declined"})
    run_until_idle(client)

    with pytest.raises(RunFailed) as info:
        handle.result()
    assert info.value.error["cause_type"] == "CardDeclined"
    (failed,) = of_kind(handle, EventKind.STEP_FAILED)
    assert (failed.data["name"], failed.data["attempts"]) == ("charge_card", 1)
    assert of_kind(handle, EventKind.RETRY_SCHEDULED) == []
    assert assert_compensated_in_reverse(handle) == ["reserve_stock"]
    assert actions(effects, "inventory") == ["release", "reserve"]
    assert not (effects / "payments").exists()
    assert not (effects / "shipping").exists()


def test_order_saga_carrier_outage_refunds_then_releases(client: Client, effects: Path) -> None:
    handle = client.start(order_saga.order_saga.options(run_id="order-A-1001"), carrier="down")
    run_until_idle(client)

    assert handle.status() is RunStatus.FAILED
    (failed,) = of_kind(handle, EventKind.STEP_FAILED)
    assert (failed.data["name"], failed.data["attempts"]) == ("book_shipment", 4)
    assert assert_compensated_in_reverse(handle) == ["charge_card", "reserve_stock"]
    assert actions(effects, "inventory") == ["release", "reserve"]
    assert actions(effects, "payments") == ["charge", "refund"]
    charge = json.loads(next((effects / "payments").glob("charge-*.json")).read_text())
    refund = json.loads(next((effects / "payments").glob("refund-*.json")).read_text())
    assert refund["request"] == {"charge": charge["id"]}
    assert refund["key"] == "order-A-1001:2:compensate"


# -- content_pipeline -------------------------------------------------------------------------
def test_content_pipeline_waits_for_the_editor_then_publishes_everywhere(
    client: Client, effects: Path
) -> None:
    handle = client.start(content_pipeline.content_pipeline, topic="Sagas in practice")
    run_until_idle(client, advance_time=False)

    run = handle.get()
    assert run.status is RunStatus.WAITING
    assert run.waiting_on is not None
    assert run.waiting_on["approval"][0]["name"] == "editor"
    (requested,) = of_kind(handle, EventKind.APPROVAL_REQUESTED)
    assert requested.data["subject"]["title"] == "Sagas in practice: what we learned"
    assert actions(effects, "cms") == ["save-draft"]
    assert not (effects / "channels").exists()

    client.approve(handle.id, comment="ship it", by="eve")
    run_until_idle(client)

    published = handle.result()
    assert (published.approved_by, published.editor_comment) == ("eve", "ship it")
    assert [p.channel for p in published.publications] == ["blog", "newsletter", "linkedin"]
    assert published.publications[0].url == "https://blog.example.com/sagas-in-practice"
    assert len(of_kind(handle, EventKind.APPROVAL_DECIDED)) == 1
    assert actions(effects, "channels") == [
        "publish-blog",
        "publish-linkedin",
        "publish-newsletter",
    ]
    assert actions(effects, "cms") == ["save-draft"]
    with pytest.raises(InvalidRunState):  # a decision is consumed once; the run is over
        client.approve(handle.id)


def test_content_pipeline_rejection_discards_the_draft(client: Client, effects: Path) -> None:
    handle = client.start(content_pipeline.content_pipeline)
    run_until_idle(client, advance_time=False)
    client.reject(handle.id, comment="off-brand", by="eve")
    run_until_idle(client)

    with pytest.raises(RunFailed) as info:
        handle.result()
    assert info.value.error["type"] == "ApprovalRejected"
    assert "off-brand" in info.value.error["message"]
    assert assert_compensated_in_reverse(handle) == ["write_draft"]
    assert actions(effects, "cms") == ["discard", "save-draft"]
    assert not (effects / "channels").exists()


def test_content_pipeline_unanswered_review_expires(
    client: Client, clock: FakeClock, effects: Path
) -> None:
    started = clock.now()
    handle = client.start(content_pipeline.content_pipeline, review_days=2)
    run_until_idle(client)  # with time advancing, nobody answers before the deadline

    with pytest.raises(RunFailed) as info:
        handle.result()
    assert info.value.error["type"] == "WaitTimeout"
    assert clock.now() == pytest.approx(started + 2 * 24 * 3600)
    assert assert_compensated_in_reverse(handle) == ["write_draft"]
    assert actions(effects, "cms") == ["discard", "save-draft"]


def test_content_pipeline_channel_outage_unpublishes_the_others(
    client: Client, effects: Path
) -> None:
    handle = client.start(content_pipeline.content_pipeline, down_channels=["newsletter"])
    run_until_idle(client, advance_time=False)
    client.approve(handle.id)
    run_until_idle(client)

    with pytest.raises(RunFailed) as info:
        handle.result()
    assert info.value.error["cause_type"] == "ChannelDown"
    undone = assert_compensated_in_reverse(handle)
    assert undone == ["publish_to", "publish_to", "write_draft"]
    assert actions(effects, "channels") == [
        "publish-blog",
        "publish-linkedin",
        "unpublish-blog",
        "unpublish-linkedin",
    ]
    assert actions(effects, "cms") == ["discard", "save-draft"]


def test_content_pipeline_drafts_with_llm_steps_and_records_the_cost(
    client: Client, effects: Path
) -> None:
    handle = client.start(content_pipeline.content_pipeline, topic="Sagas in practice")
    run_until_idle(client, advance_time=False)
    client.approve(handle.id)
    run_until_idle(client)

    published = handle.result()
    assert published.section == "engineering"
    assert published.newsletter_subject == "This week: Sagas in practice: what we learned"
    assert len(published.social) == 2
    llm_calls = [
        e for e in of_kind(handle, EventKind.STEP_COMPLETED) if e.data["name"] == "llm.complete"
    ]
    assert len(llm_calls) == 4  # draft, section, newsletter, social posts
    recorded = sum(e.data["result"]["cost"] for e in llm_calls)
    assert published.llm_cost_usd == pytest.approx(recorded)
    assert 0 < published.llm_cost_usd < 0.05
    assert llm_calls[0].data["result"]["request"]["template"]["ref"] == "blog-draft@1"


def test_content_pipeline_unsure_section_asks_the_editor(client: Client, effects: Path) -> None:
    handle = client.start(content_pipeline.content_pipeline, topic="Team offsite notes")
    run_until_idle(client, advance_time=False)
    (requested,) = of_kind(handle, EventKind.APPROVAL_REQUESTED)
    assert requested.data["name"] == "decide:section"
    assert requested.data["subject"]["proposal"] == "culture"
    assert requested.data["subject"]["confidence"] == 0.62
    client.approve(handle.id, name="decide:section", comment="culture", by="eve")
    run_until_idle(client, advance_time=False)
    client.approve(handle.id, name="editor", by="eve")
    run_until_idle(client)
    assert handle.result().section == "culture"


def test_content_pipeline_stops_at_its_budget(client: Client, effects: Path) -> None:
    handle = client.start(content_pipeline.content_pipeline, budget_usd=0.00001)
    run_until_idle(client)
    with pytest.raises(RunFailed) as info:
        handle.result()
    assert info.value.error["type"] == "BudgetExceeded"
    assert not (effects / "cms").exists()  # stopped before the first call: nothing drafted


# -- self_healing_deploy ----------------------------------------------------------------------
def cluster_state(effects: Path) -> dict[str, str]:
    state: dict[str, str] = json.loads((effects / "cluster" / "checkout.json").read_text())
    return state


def test_deploy_default_input_promotes_the_fleet_within_seconds(
    client: Client, clock: FakeClock, effects: Path
) -> None:
    started = clock.now()
    handle = start_input(client, self_healing_deploy.self_healing_deploy, {})
    run_until_idle(client)

    rollout = handle.result()
    assert rollout.previous == self_healing_deploy.BASELINE
    assert rollout.promoted == ["eu-west", "us-east", "ap-south"]
    assert cluster_state(effects) == dict.fromkeys(["canary", *rollout.promoted], "v2.4.0")
    (timer,) = of_kind(handle, EventKind.TIMER_SET)
    assert timer.data["due"] == pytest.approx(started + 1.0)
    # The demo the README shows first: its waits add up to a couple of seconds at most.
    assert clock.now() - started < 5


def test_deploy_flaky_metrics_are_retried_until_healthy(client: Client, effects: Path) -> None:
    handle = client.start(self_healing_deploy.self_healing_deploy, canary_health="flaky")
    run_until_idle(client)

    assert handle.result().canary.error_rate < self_healing_deploy.ERROR_BUDGET
    retries = of_kind(handle, EventKind.RETRY_SCHEDULED)
    assert [e.data["name"] for e in retries] == ["check_health"] * 4  # 2 per check
    assert of_kind(handle, EventKind.COMPENSATION_RAN) == []


def test_deploy_unhealthy_canary_is_rolled_back_and_the_fleet_untouched(
    client: Client, clock: FakeClock, effects: Path
) -> None:
    started = clock.now()
    handle = client.start(self_healing_deploy.self_healing_deploy, canary_health="bad")
    run_until_idle(client)

    with pytest.raises(RunFailed) as info:
        handle.result()
    assert info.value.error["cause_type"] == "Unhealthy"
    (failed,) = of_kind(handle, EventKind.STEP_FAILED)
    assert (failed.data["name"], failed.data["attempts"]) == ("check_health", 4)
    assert of_kind(handle, EventKind.TIMER_SET) == []  # never reached the soak
    assert assert_compensated_in_reverse(handle) == ["deploy_to"]
    assert cluster_state(effects) == {"canary": self_healing_deploy.BASELINE}
    assert clock.now() - started < 5


def test_deploy_rollback_restores_what_the_last_good_deploy_left(
    client: Client, effects: Path
) -> None:
    good = client.start(self_healing_deploy.self_healing_deploy, version="v2.4.0")
    run_until_idle(client)
    assert good.result().previous == self_healing_deploy.BASELINE

    bad = client.start(
        self_healing_deploy.self_healing_deploy, version="v2.5.0", canary_health="bad"
    )
    run_until_idle(client)

    assert bad.status() is RunStatus.FAILED
    (deployed,) = [
        e for e in of_kind(bad, EventKind.STEP_COMPLETED) if e.data["name"] == "deploy_to"
    ]
    assert deployed.data["result"] == "v2.4.0"  # the undo gets the step's result
    assert cluster_state(effects) == dict.fromkeys(
        ["canary", "eu-west", "us-east", "ap-south"], "v2.4.0"
    )


def test_deploy_cancelled_during_the_soak_rolls_back_the_canary(
    client: Client, effects: Path
) -> None:
    handle = client.start(self_healing_deploy.self_healing_deploy, soak_seconds=600)
    run_until_idle(client, advance_time=False)
    assert handle.get().waiting_on == {"timer": [{"seq": 3, "name": "sleep", "due": ANY}]}
    assert cluster_state(effects) == {"canary": "v2.4.0"}

    client.cancel(handle.id)
    run_until_idle(client, advance_time=False)

    assert handle.status() is RunStatus.CANCELLED
    assert assert_compensated_in_reverse(handle) == ["deploy_to"]
    assert cluster_state(effects) == {"canary": self_healing_deploy.BASELINE}
