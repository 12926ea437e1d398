"""Agents: plans from a real OpenAI-compatible server on loopback, validated, approved,
executed as durable steps, re-planned, and never steered by what tools return."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from spokehub import Client, RunFailed, step, workflow
from spokehub.engine.events import EventKind
from spokehub.errors import RegistrationError
from spokehub.intelligence import LLMConfig, OpenAICompatible, Price, PriceTable, configure
from spokehub.intelligence import agent as agents
from spokehub.intelligence.tools import ToolRegistry, tool
from spokehub.testing import run_until_idle
from tests.llm.server import Answer, LLMServer

PRICES = PriceTable({"planner": Price(1.0, 2.0)})
CALLS: Counter[str] = Counter()
UNDONE: list[str] = []


def setup(server: LLMServer) -> None:
    configure(
        LLMConfig(
            providers={"default": OpenAICompatible(server.url)},
            prices=PRICES,
            default_model="planner",
        )
    )


def plan(*calls: dict[str, Any], answer: str = "done") -> Answer:
    return Answer({"calls": list(calls), "answer": answer}, prompt_tokens=100, completion_tokens=20)


def call(cid: str, name: str, reason: str = "because", **args: Any) -> dict[str, Any]:
    return {"id": cid, "tool": name, "args": args, "reason": reason}


@tool
@step
async def lookup_product(sku: str) -> dict[str, Any]:
    """Read a product's copy and price from the catalogue."""
    CALLS["lookup_product"] += 1
    return {"sku": sku, "title": "Rain jacket", "cents": 12900}


async def _undo_price(result: int, sku: str, cents: int) -> None:
    UNDONE.append(sku)


@tool(risk="high", labels=["catalog", "money"])
@step(compensate=_undo_price)
async def set_price(sku: str, cents: int) -> int:
    """Change a product's price, in cents."""
    CALLS["set_price"] += 1
    return cents


@tool
async def fix_copy(sku: str, title: str) -> str:
    """Replace a product's title with corrected copy."""
    CALLS["fix_copy"] += 1
    if title == "fail":
        raise RuntimeError("the CMS refused the title")
    return f"{sku}: {title}"


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    UNDONE.clear()


@workflow
async def ag_catalog(intent: str, approve: str = "risky") -> dict[str, Any]:
    result = await agents.run(
        intent,
        tools=[lookup_product, set_price, fix_copy],
        approve_plan=approve,  # type: ignore[arg-type]
        approvers=["merch"],
        max_steps=4,
        max_replans=1,
        policy=_policy,
    )
    return {
        "answer": result.answer,
        "calls": [[c["tool"], c["args"]] for c in result.calls],
        "plans": result.plans,
        "replans": result.replans,
        "rejections": result.rejections,
        "cost": result.cost,
    }


def _policy(point: str, doc: Any) -> str | None:
    if point == "execute_step" and doc["tool"] == "set_price" and doc["args"]["cents"] < 100:
        return "a price under 1.00 needs a human"
    if (
        point == "plan"
        and any(c["tool"] == "set_price" for c in doc["calls"])
        and len(doc["calls"]) > 3
    ):
        return "no more than 3 calls in a plan that changes prices"
    return None


def test_tools_export_openai_format_and_refuse_bad_signatures() -> None:
    exported = ToolRegistry([lookup_product, set_price]).openai()
    assert exported[1]["function"]["name"] == "set_price"
    assert exported[1]["function"]["parameters"]["required"] == ["sku", "cents"]
    assert set_price.risk == "high"
    assert set_price.labels == ("catalog", "money")
    with pytest.raises(RegistrationError, match="no type annotation"):

        @tool
        async def untyped(x) -> None:  # type: ignore[no-untyped-def]
            """Bad."""

    with pytest.raises(RegistrationError, match=r"\*args"):

        @tool
        async def star(*items: str) -> None:
            """Bad."""

    with pytest.raises(RegistrationError, match="not serialisable"):

        @tool
        async def opaque(conn: Client) -> None:
            """Bad."""

    with pytest.raises(RegistrationError, match="description"):

        @tool
        async def silent(x: int) -> None:
            pass


def test_a_valid_plan_runs_as_durable_steps(client: Client, llm_server: LLMServer) -> None:
    setup(llm_server)
    llm_server.add(
        plan(
            call("c1", "lookup_product", "read the current copy", sku="J-1"),
            call(
                "c2",
                "fix_copy",
                "fix the typo",
                sku={"$from": "c1", "pointer": "/sku"},
                title="Rain jacket, waterproof",
            ),
        )
    )
    handle = client.start(ag_catalog, "fix the copy of J-1")
    run_until_idle(client)
    out = handle.result(timeout=10)
    assert out["calls"] == [
        ["lookup_product", {"sku": "J-1"}],
        ["fix_copy", {"sku": "J-1", "title": "Rain jacket, waterproof"}],
    ]
    assert out["cost"] == pytest.approx((100 * 1.0 + 20 * 2.0) / 1e6)
    names = [e.data["name"] for e in client.events(handle.id) if e.kind is EventKind.STEP_COMPLETED]
    assert names == [
        "agent.note",  # intent
        "llm.complete",  # the planner
        "agent.policy",  # the policy's verdict on the plan, recorded
        "agent.note",  # the accepted plan
        "agent.policy",  # the verdict on each call, at the moment it runs
        "lookup_product",
        "agent.policy",
        "tool.fix_copy",
        "agent.note",  # finished
    ]
    # the planner saw the tools in the OpenAI format and the intent
    sent = json.loads(llm_server.log[0].body["messages"][-1]["content"])
    assert sent["intent"] == "fix the copy of J-1"
    assert [t["function"]["name"] for t in sent["tools"]] == [
        "lookup_product",
        "set_price",
        "fix_copy",
    ]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (plan(call("c1", "drop_table", table="products")), "unknown tool 'drop_table'"),
        (plan(call("c1", "set_price", sku="J-1", cents="cheap")), "calls[0].args.cents"),
        (plan(call("c1", "lookup_product", sku="J-1", extra=1)), "calls[0].args.extra"),
        (plan(*[call(f"c{i}", "lookup_product", sku="J") for i in range(5)]), "at most 4"),
        (plan(call("c1", "fix_copy", sku={"$from": "c9"}, title="x")), "references 'c9'"),
        (plan(call("c1", "lookup_product", sku="a"), call("c1", "lookup_product", sku="b")),
         "used twice"),
        (plan(*[call(f"c{i}", "set_price", sku="J", cents=500) for i in range(4)]),
         "policy (plan): no more than 3"),
    ],
)  # fmt: skip
def test_invalid_plans_are_rejected_and_the_planner_is_asked_again(
    client: Client, llm_server: LLMServer, bad: Answer, reason: str
) -> None:
    setup(llm_server)
    llm_server.add(bad, plan(call("c1", "lookup_product", sku="J-1")))
    handle = client.start(ag_catalog, "look at J-1")
    run_until_idle(client)
    out = handle.result(timeout=10)
    assert out["plans"] == 2
    assert any(reason in r for r in out["rejections"]), out["rejections"]
    assert CALLS == {"lookup_product": 1}  # nothing of the rejected plan ran
    second = json.loads(llm_server.log[1].body["messages"][-1]["content"])
    assert any(reason in r for r in second["your_previous_plan_was_rejected"])


def test_a_risky_plan_waits_for_a_human(client: Client, llm_server: LLMServer) -> None:
    setup(llm_server)
    llm_server.add(plan(call("c1", "set_price", "clearance sale", sku="J-1", cents=9900)))
    handle = client.start(ag_catalog, "put J-1 on sale")
    run_until_idle(client)
    assert handle.status().value == "waiting"
    assert CALLS["set_price"] == 0
    pending = [e for e in client.events(handle.id) if e.kind is EventKind.APPROVAL_REQUESTED]
    subject = pending[0].data["subject"]
    assert subject["calls"][0]["reason"] == "clearance sale"
    assert "set_price" in subject["why"]
    client.approve(handle.id, by="merch")
    run_until_idle(client)
    assert handle.result(timeout=10)["calls"] == [["set_price", {"sku": "J-1", "cents": 9900}]]


def test_a_failed_call_replans_then_gives_up_and_compensates(
    client: Client, llm_server: LLMServer
) -> None:
    setup(llm_server)
    llm_server.add(
        plan(call("c1", "set_price", sku="J-1", cents=500), call("c2", "fix_copy", sku="J-1",
             title="fail")),
        plan(call("c3", "fix_copy", sku="J-1", title="fail")),
    )  # fmt: skip
    handle = client.start(ag_catalog, "reprice and retitle", "never")
    run_until_idle(client)
    with pytest.raises(RunFailed, match="gave up after 1 re-plan"):
        handle.result(timeout=10)
    assert CALLS["set_price"] == 1
    assert UNDONE == ["J-1"]  # the saga undid the completed price change
    # the re-plan saw the completed call and the failure
    state = json.loads(llm_server.log[1].body["messages"][-1]["content"])
    assert state["state"]["completed_calls"][0]["tool"] == "set_price"


def test_policy_at_execute_step_refuses_a_call_built_from_results(
    client: Client, llm_server: LLMServer
) -> None:
    setup(llm_server)
    llm_server.add(plan(call("c1", "set_price", sku="J-1", cents=50)), plan())
    handle = client.start(ag_catalog, "price J-1", "never")
    run_until_idle(client)
    out = handle.result(timeout=10)
    assert CALLS["set_price"] == 0
    assert any("a price under 1.00 needs a human" in r for r in out["rejections"])
    assert out["replans"] == 1


GOVERNED = """
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: price-floor}
spec:
  validations:
    - expression: object.args.cents >= 100
      messageExpression: "'price ' + string(object.args.cents) + ' is under the floor'"
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: agent-price-floor}
spec:
  policyName: price-floor
  match: {hooks: [agent.execute_step], names: [set_price]}
  actions: [Deny]
"""


@workflow
async def ag_governed(intent: str) -> dict[str, Any]:
    from spokehub.governance import Policies, load_policy_texts

    policies = Policies(load_policy_texts([("agent.yaml", GOVERNED)]))
    result = await agents.run(
        intent, tools=[set_price], approve_plan="never", policy=agents.governed(policies)
    )
    return {"calls": len(result.calls), "rejections": result.rejections}


def test_the_governance_layer_decides_for_the_agent(client: Client, llm_server: LLMServer) -> None:
    setup(llm_server)
    llm_server.add(plan(call("c1", "set_price", sku="J-1", cents=50)), plan())
    handle = client.start(ag_governed, "price J-1")
    run_until_idle(client)
    out = handle.result(timeout=10)
    assert CALLS["set_price"] == 0
    assert any("price 50 is under the floor" in r for r in out["rejections"])
    verdicts = [
        e.data["result"]
        for e in client.events(handle.id)
        if e.kind is EventKind.STEP_COMPLETED and e.data["name"] == "agent.policy"
    ]
    # the plans pass, the call is refused: each verdict recorded once, never asked again
    assert verdicts == [None, "price-floor: price 50 is under the floor", None]
