"""Confidence routing: logprobs over real HTTP, agreement with the scripted provider,
approvals below the threshold, recorded outcomes, and calibration figures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spokehub import ApprovalRejected, Client, RunFailed, RunStatus, workflow
from spokehub.intelligence import (
    LabelDecision,
    LLMConfig,
    OpenAICompatible,
    Price,
    PriceTable,
    Usage,
    calibrate,
    calibration,
    configure,
    decide,
)
from spokehub.intelligence.storage import DecisionRow, decisions
from spokehub.testing import Reply, ScriptedProvider, label_logprobs, run_until_idle
from tests.llm.server import Answer, LLMServer, label_tokens

PRICES = PriceTable({"m1": Price(1.0, 1.0)})


@workflow
async def ai_triage(text: str) -> dict[str, Any]:
    try:
        d: LabelDecision = await decide(
            "Is this spam?", labels=["spam", "ham"], context=text, model="m1", name="spam"
        )
    except ApprovalRejected:
        return {"rejected": True}
    return {
        "label": d.label,
        "proposal": d.proposal,
        "confidence": round(d.confidence, 6),
        "method": d.method,
        "routed": d.routed,
        "by": d.decided_by,
    }


def answer(label: str, p: float) -> Answer:
    content = json.dumps({"label": label, "rationale": "because"})
    other = "ham" if label == "spam" else "spam"
    return Answer(content, logprobs=label_tokens(content, label, {label: p, other: 1 - p}))


def rows(client: Client) -> list[DecisionRow]:
    async def read() -> list[DecisionRow]:
        return list(await client.store.transact(lambda tx: decisions(tx, "ai_triage")))

    import asyncio

    return asyncio.run(read())


def test_confident_decision_from_logprobs(client: Client, llm_server: LLMServer) -> None:
    configure(LLMConfig(providers={"default": OpenAICompatible(llm_server.url)}, prices=PRICES))
    llm_server.add(answer("spam", 0.9))
    handle = client.start(ai_triage, "WIN A PRIZE")
    run_until_idle(client)
    assert handle.result() == {
        "label": "spam",
        "proposal": "spam",
        "confidence": 0.9,
        "method": "logprobs",
        "routed": False,
        "by": None,
    }
    body = llm_server.log[0].body
    assert body["logprobs"] is True
    assert body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == [
        "spam",
        "ham",
    ]
    [row] = rows(client)
    assert (row.label, row.routed, row.outcome, row.method) == ("spam", False, None, "logprobs")


def test_unsure_decision_goes_to_a_human(client: Client, llm_server: LLMServer) -> None:
    configure(LLMConfig(providers={"default": OpenAICompatible(llm_server.url)}, prices=PRICES))
    llm_server.add(answer("spam", 0.6))
    handle = client.start(ai_triage, "hello friend")
    run_until_idle(client)
    assert handle.status() is RunStatus.WAITING
    approval = next(e for e in client.events(handle.id) if e.kind.value == "approval_requested")
    assert approval.data["name"] == "decide:spam"
    assert approval.data["subject"]["proposal"] == "spam"
    assert approval.data["subject"]["confidence"] == 0.6
    client.approve(handle.id, comment="ham", by="editor@example.com")
    run_until_idle(client)
    assert handle.result()["label"] == "ham"
    assert handle.result()["proposal"] == "spam"
    assert handle.result()["routed"] is True
    [row] = rows(client)
    assert (row.label, row.outcome, row.decided_by) == ("spam", "ham", "editor@example.com")
    assert len(llm_server.log) == 1


def test_rejection_without_a_label_raises(client: Client, llm_server: LLMServer) -> None:
    configure(LLMConfig(providers={"default": OpenAICompatible(llm_server.url)}, prices=PRICES))
    llm_server.add(answer("ham", 0.55))
    handle = client.start(ai_triage, "?")
    run_until_idle(client)
    client.reject(handle.id, comment="neither")
    run_until_idle(client)
    assert handle.result() == {"rejected": True}
    assert rows(client)[0].outcome == "(rejected)"


def test_agreement_when_no_logprobs(client: Client) -> None:
    votes = ["spam", "spam", "ham", "spam", "spam"]
    provider = ScriptedProvider(
        [Reply({"label": v, "rationale": "r"}, usage=Usage(5, 5)) for v in votes]
    )
    configure(LLMConfig(providers={"default": provider}, prices=PRICES))
    handle = client.start(ai_triage, "x")
    run_until_idle(client)
    result = handle.result()
    assert result["method"] == "agreement"
    assert result["confidence"] == 0.8
    assert result["routed"] is False
    assert len(provider.requests) == 5
    assert {r.temperature for r in provider.requests[1:]} == {0.8}


def test_scripted_logprobs_helper_and_errors(client: Client) -> None:
    content = json.dumps({"label": "ham", "rationale": "ok"})
    provider = ScriptedProvider(
        [Reply(content, logprobs=label_logprobs(content, "ham", {"ham": 0.97, "spam": 0.03}))]
    )
    configure(LLMConfig(providers={"default": provider}, prices=PRICES))
    handle = client.start(ai_triage, "x")
    run_until_idle(client)
    assert handle.result()["confidence"] == 0.97
    broken = client.start(ai_triage, "y")  # the script is used up: the provider says so
    run_until_idle(client)
    with pytest.raises(RunFailed, match="no scripted reply"):
        broken.result()


def decision(conf: float, right: bool, i: int) -> DecisionRow:
    return DecisionRow(
        run_id=f"r{i}",
        seq=1,
        workflow="wf",
        name="d",
        label="a",
        confidence=conf,
        method="logprobs",
        routed=True,
        outcome="a" if right else "b",
        decided_by=None,
        at=float(i),
    )


def test_calibration_figures_on_a_known_set() -> None:
    # 10 decisions at 0.95 (9 right), 10 at 0.75 (6 right), 5 at 0.55 (2 right).
    data = [decision(0.95, i < 9, i) for i in range(10)]
    data += [decision(0.75, i < 6, 10 + i) for i in range(10)]
    data += [decision(0.55, i < 2, 20 + i) for i in range(5)]
    # A decision nobody reviewed has no outcome and is left out.
    unjudged = decision(0.5, True, 30)
    data.append(
        DecisionRow(**{**{f: getattr(unjudged, f) for f in unjudged.__slots__}, "outcome": None})
    )
    report = calibrate("wf", data, bins=10, target_precision=0.85)
    assert report.decisions == 25
    assert report.accuracy == pytest.approx(17 / 25)
    by_bin = {(b.low, b.count): (b.confidence, b.accuracy) for b in report.bins}
    assert by_bin[(0.9, 10)] == pytest.approx((0.95, 0.9))
    assert by_bin[(0.7, 10)] == pytest.approx((0.75, 0.6))
    assert by_bin[(0.5, 5)] == pytest.approx((0.55, 0.4))
    ece = 10 / 25 * 0.05 + 10 / 25 * 0.15 + 5 / 25 * 0.15
    assert report.ece == pytest.approx(ece)
    # Precision at >= 0.95 is 0.9 (meets 0.85); at >= 0.75 it is 15/20 = 0.75 (does not).
    assert report.threshold == 0.95
    assert report.coverage == pytest.approx(10 / 25)
    assert calibrate("wf", data, target_precision=0.99).threshold is None


def test_calibration_reads_recorded_decisions(client: Client, llm_server: LLMServer) -> None:
    configure(LLMConfig(providers={"default": OpenAICompatible(llm_server.url)}, prices=PRICES))
    for p, truth in [(0.6, "spam"), (0.7, "ham"), (0.65, "spam")]:
        llm_server.add(answer("spam", p))
        handle = client.start(ai_triage, f"text {p}")
        run_until_idle(client)
        client.approve(handle.id, comment=truth)
        run_until_idle(client)
        assert handle.result()["label"] == truth

    import asyncio

    report = asyncio.run(calibration(client.store, "ai_triage", target=0.6))
    assert report.decisions == 3
    assert report.accuracy == pytest.approx(2 / 3)
    assert report.by_method == {"logprobs": 3}
