"""An e-commerce catalogue agent: it fixes product copy and flags price anomalies, remembers
each customer's style, and asks a human before it changes a price.

    pip install -e '.[ai]'        # the LLM client and the embedded embedding model
    spokehub run examples/catalog_agent.py:catalog_agent --no-wait --id cat-1
    spokehub worker --app examples/catalog_agent.py --until-idle
    spokehub runs show cat-1                  # waits for approval: the plan changes a price
    spokehub approve cat-1 --name agent-plan --comment "ok"
    spokehub worker --app examples/catalog_agent.py --until-idle
    spokehub runs show cat-1                  # the plan, each tool call and its reason

What happens, all of it durable (a crash resumes at the next call, nothing runs twice):

1. **Memory.** The customer's style guide is kept in long-term memory (texts with embeddings,
   searched by meaning); the agent recalls the rules that matter for "product titles".
2. **Anomalies.** The catalogue's prices go through a robust z-score per category: a rain
   jacket at 1.29 among jackets at about 130 is flagged before anybody plans anything.
3. **Plan.** The planner (an LLM step) reads the products, then proposes a plan: fix the
   titles that break the style guide (medium risk), flag the anomaly, and set the price back
   (``set_price`` is high risk, so the whole plan waits for a human: ``agent-plan``).
4. **Act.** Each tool call is a step; the CMS (simulated by ``FakeService``: one JSON file per
   call under ``.spokehub/example-effects/cms/``, keyed by the step's idempotency key) is
   changed once per call even across crashes.
5. **Session memory.** What was done is written to the customer's session memory (versioned).

Offline by default: the planner is a scripted provider that reads the state it is given and
answers like a careful model. With ``SPOKEHUB_LLM_BASE_URL`` (and ``SPOKEHUB_LLM_MODEL``) a
real model plans instead.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from spokehub import step, step_context, workflow
from spokehub.intelligence import (
    ChatRequest,
    LLMConfig,
    Price,
    PriceTable,
    configure,
)
from spokehub.intelligence import agent as agents
from spokehub.intelligence.detectors import RobustZScore
from spokehub.intelligence.memory import recall, remember, session_put
from spokehub.intelligence.tools import tool
from spokehub.testing import Reply, ScriptedProvider

ONLINE = bool(os.environ.get("SPOKEHUB_LLM_BASE_URL"))

CATALOG: dict[str, dict[str, Any]] = {
    "J-100": {"title": "rain jaket, waterprof", "category": "jackets", "cents": 12900},
    "J-101": {"title": "Down Jacket", "category": "jackets", "cents": 18900},
    "J-102": {"title": "Wind Shell", "category": "jackets", "cents": 9900},
    "J-103": {"title": "Trail Jacket", "category": "jackets", "cents": 129},
    "J-104": {"title": "Parka", "category": "jackets", "cents": 21900},
    "J-105": {"title": "Softshell", "category": "jackets", "cents": 11900},
    "J-106": {"title": "Fleece jacket", "category": "jackets", "cents": 7900},
    "J-107": {"title": "Insulated Vest", "category": "jackets", "cents": 8900},
    "J-108": {"title": "Rain Poncho", "category": "jackets", "cents": 4900},
    "J-109": {"title": "Ski Jacket", "category": "jackets", "cents": 25900},
    "J-110": {"title": "Hybrid Jacket", "category": "jackets", "cents": 15900},
}
STYLE_GUIDE = [
    "Product titles use Title Case: every word starts with a capital letter.",
    "Spell product words correctly: jacket, waterproof, windproof.",
    "Prices are never changed without a merchandiser's approval.",
    "Newsletters are sent on Tuesdays.",
]
FIXES = {"jaket": "jacket", "waterprof": "waterproof"}


class FakeService:
    """A remote CMS stand-in: one JSON file per call, keyed by the caller's idempotency key."""

    def __init__(self, name: str) -> None:
        self.name = name

    def call(self, action: str, key: str, request: dict[str, Any]) -> dict[str, Any]:
        folder = Path(os.environ.get("SPOKEHUB_EXAMPLE_EFFECTS", ".spokehub/example-effects"))
        path = folder / self.name / f"{action}-{key.replace(':', '_')}.json"
        if not path.exists():  # a repeated key acts no more: the first call's file stands
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"action": action, "key": key, "request": request}))
        return request


cms = FakeService("cms")


# -- tools ---------------------------------------------------------------------------------------
@tool
async def read_product(sku: str) -> dict[str, Any]:
    """Read a product's title, category and price (in cents) from the catalogue."""
    return {"sku": sku, **CATALOG[sku]}


@tool(risk="medium", labels=["catalog", "copy"])
async def fix_copy(sku: str, title: str) -> str:
    """Replace a product's title with corrected copy."""
    cms.call("fix_copy", step_context().idempotency_key, {"sku": sku, "title": title})
    return title


@tool(labels=["catalog", "pricing"])
async def flag_price(sku: str, reason: str) -> str:
    """Open a ticket for a merchandiser about a suspicious price."""
    cms.call("flag_price", step_context().idempotency_key, {"sku": sku, "reason": reason})
    return f"ticket for {sku}"


@tool(risk="high", labels=["catalog", "pricing", "money"])
async def set_price(sku: str, cents: int) -> int:
    """Change a product's price, in cents."""
    cms.call("set_price", step_context().idempotency_key, {"sku": sku, "cents": cents})
    return cents


# -- steps ---------------------------------------------------------------------------------------
@step
async def find_price_anomalies(skus: list[str]) -> list[dict[str, Any]]:
    """Robust z-score of each log-price against the others of its category (prices differ by
    factors, not amounts, so the log scale is where "far" means something)."""
    flagged = []
    for sku in skus:
        item = CATALOG[sku]
        peers = [
            p["cents"] for s, p in CATALOG.items() if s != sku and p["category"] == item["category"]
        ]
        det = RobustZScore(window=len(peers) + 1, threshold=3.5, min_samples=min(5, len(peers)))
        for cents in peers:
            det.update(math.log(cents))
        anomaly = det.update(math.log(item["cents"]))
        if anomaly is not None:
            typical = round(math.exp(anomaly.expected))
            flagged.append({"sku": sku, "cents": item["cents"], "typical": typical})
    return flagged


# -- the planner -----------------------------------------------------------------------------------
def _offline_planner(request: ChatRequest) -> Reply:
    """A careful model, scripted: read first, then fix, flag and restore what it read."""
    state = json.loads(request.messages[-1]["content"])
    done = state["state"]["completed_calls"]
    intent = json.loads(state["intent"])
    if not done:
        calls = [
            {"id": f"r{i}", "tool": "read_product", "args": {"sku": sku}, "reason": "read it first"}
            for i, sku in enumerate(intent["skus"])
        ]
        return Reply({"calls": calls, "answer": "", "done": False})
    calls = []
    for call in done:
        if call["tool"] != "read_product":
            continue
        product = call["result"]
        fixed = " ".join(FIXES.get(w, w) for w in re.split(r"[\s,]+", product["title"])).title()
        if fixed != product["title"]:
            why = "the style guide asks for Title Case and correct spelling"
            args = {"sku": product["sku"], "title": fixed}
            calls.append({"id": f"f{len(calls)}", "tool": "fix_copy", "args": args, "reason": why})
    for anomaly in intent["anomalies"]:
        typical = int(anomaly["typical"])
        note = f"{anomaly['cents']} vs about {typical}"
        calls.append({"id": f"p{len(calls)}", "tool": "flag_price",
                      "args": {"sku": anomaly["sku"], "reason": note},
                      "reason": "the price is far from its category's"})  # fmt: skip
        calls.append({"id": f"s{len(calls)}", "tool": "set_price",
                      "args": {"sku": anomaly["sku"], "cents": typical},
                      "reason": "restore a price in line with its category"})  # fmt: skip
    return Reply({"calls": calls, "answer": f"{len(calls)} change(s) proposed", "done": True})


def setup_llm() -> None:
    if ONLINE:
        configure(LLMConfig.from_env())
        return
    configure(
        LLMConfig(
            providers={"default": ScriptedProvider(default=_offline_planner)},
            models={"planner": ["offline-planner"]},
            prices=PriceTable.defaults().merged({"offline-planner": Price(0.15, 0.60)}),
        )
    )


setup_llm()


@workflow
async def catalog_agent(customer: str = "acme", skus: list[str] | None = None) -> dict[str, Any]:
    """Fix product copy and flag price anomalies for ``customer``; a price change waits for
    a human."""
    chosen = skus or ["J-100", "J-101", "J-103"]
    await remember(customer, STYLE_GUIDE, [{"kind": "style"} for _ in STYLE_GUIDE])
    rules = await recall(customer, "how to write product titles", 2, {"kind": "style"})
    anomalies = await find_price_anomalies(chosen)
    intent = json.dumps({"goal": "fix product copy and flag price anomalies", "skus": chosen,
                         "anomalies": anomalies})  # fmt: skip
    result = await agents.run(
        intent,
        tools=[read_product, fix_copy, flag_price, set_price],
        constraints=[r["text"] for r in rules],
        max_steps=12,
        model=None if ONLINE else "planner",
    )
    summary = {
        "answer": result.answer,
        "changes": [
            f"{c['tool']}({c['args']['sku']})" for c in result.calls if c["tool"] != "read_product"
        ],
        "anomalies": [a["sku"] for a in anomalies],
        "rules_used": [r["text"] for r in rules],
        "planning_cost_usd": round(result.cost, 6),
    }  # fmt: skip
    await session_put(customer, "last_catalog_review", summary)
    return summary
