"""Session and long-term memory on both backends; writes from workflows happen once."""

from __future__ import annotations

import pytest

from spokehub import Client, sleep, workflow
from spokehub.intelligence.memory import (
    LongTermMemory,
    MemoryUsageError,
    SessionMemory,
    UnknownNamespace,
    recall,
    remember,
    session_get,
    session_put,
)
from spokehub.runtime.client import _sync
from spokehub.store.base import Tx
from spokehub.testing import FakeClock, run_until_idle

# A small labelled set: each query's relevant document, among distractors.
DOCS = {
    "refund": "Customers can ask for a refund within 30 days of delivery.",
    "shipping": "Orders ship from the Lyon warehouse within two business days.",
    "password": "Reset your password from the account settings page.",
    "canary": "New releases go to the canary region before all other regions.",
    "tokens": "Design tokens hold the colours, spacing and fonts of the brand.",
    "invoice": "Invoices are emailed as PDF files at the end of each month.",
    "outage": "During an outage, the status page shows which services are down.",
    "discount": "Loyalty members get a ten percent discount on every order.",
}
QUERIES = {
    "how long do I have to return an item for my money back": "refund",
    "when will my parcel leave the depot": "shipping",
    "I forgot my login credentials": "password",
    "where does a new version get deployed first": "canary",
    "brand colour palette and typography variables": "tokens",
    "monthly billing document": "invoice",
    "is the site down right now": "outage",
    "price reduction for returning customers": "discount",
}


def _count(client: Client, table: str) -> int:
    def q(tx: Tx) -> int:
        return int(tx.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    return _sync(client.store.transact(q, write=False))


def test_session_memory_keeps_versions(client: Client, clock: FakeClock) -> None:
    mem = SessionMemory(client)
    assert _sync(mem.get("cust-1", "tone")) is None
    assert _sync(mem.put("cust-1", "tone", "formal")) == 1
    clock.advance(1)
    assert _sync(mem.put("cust-1", "tone", {"style": "casual", "emoji": False})) == 2
    latest = _sync(mem.get("cust-1", "tone"))
    assert latest is not None
    assert latest.version == 2
    assert latest.value == {"style": "casual", "emoji": False}
    first = _sync(mem.get("cust-1", "tone", version=1))
    assert first is not None
    assert first.value == "formal"
    assert [v.version for v in _sync(mem.history("cust-1", "tone"))] == [1, 2]
    # the same write id writes once
    assert _sync(mem.put("cust-1", "tone", "x", write_id="w1")) == 3
    assert _sync(mem.put("cust-1", "tone", "x", write_id="w1")) == 3
    assert _count(client, "memory_kv") == 3
    with pytest.raises(MemoryUsageError, match="non-empty"):
        _sync(mem.put("", "k", 1))


def test_search_finds_the_relevant_document(client: Client) -> None:
    mem = LongTermMemory(client)
    _sync(mem.add("faq", list(DOCS.values()), metadata=[{"topic": k} for k in DOCS]))
    correct = 0
    for query, want in QUERIES.items():
        hits = _sync(mem.search("faq", query, k=3))
        assert len(hits) == 3
        assert hits[0].score >= hits[1].score >= hits[2].score
        correct += hits[0].metadata["topic"] == want
    assert correct >= 7, f"top-1 accuracy {correct}/{len(QUERIES)}"


def test_search_filters_and_incremental_index(client: Client) -> None:
    mem = LongTermMemory(client)
    _sync(mem.add("kb", ["red shoes", "blue shoes"], metadata=[{"lang": "en"}, {"lang": "fr"}]))
    hits = _sync(mem.search("kb", "shoes", k=5, filter={"lang": "fr"}))
    assert [h.text for h in hits] == ["blue shoes"]
    _sync(mem.add("kb", ["green shoes"], metadata=[{"lang": "fr"}]))  # seen by the next search
    assert {h.text for h in _sync(mem.search("kb", "shoes", k=5, filter={"lang": "fr"}))} == {
        "blue shoes",
        "green shoes",
    }
    other = LongTermMemory(client)  # another process: same answers from the database
    assert len(_sync(other.search("kb", "shoes", k=10))) == 3
    assert _sync(mem.forget("kb", [hits[0].id])) == 1
    assert len(_sync(mem.search("kb", "shoes", k=10))) == 2
    assert len(_sync(other.search("kb", "shoes", k=10))) == 2  # deletion elsewhere is noticed


def test_memory_bad_input(client: Client) -> None:
    mem = LongTermMemory(client)
    with pytest.raises(UnknownNamespace, match="no namespace 'nope'"):
        _sync(mem.search("nope", "anything"))
    _sync(mem.add("vec", ["a", "b"], vectors=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    with pytest.raises(MemoryUsageError, match="2 dimensions; namespace 'vec' holds 3"):
        _sync(mem.search("vec", [1.0, 0.0]))
    with pytest.raises(MemoryUsageError, match="holds 3-dimensional"):
        _sync(mem.add("vec", ["c"], vectors=[[1.0, 0.0]]))
    with pytest.raises(MemoryUsageError, match="zero vector"):
        _sync(mem.add("vec", ["z"], vectors=[[0.0, 0.0, 0.0]]))
    with pytest.raises(MemoryUsageError, match="same length"):
        _sync(mem.add("vec", ["c"], ids=["1", "2"], vectors=[[1.0, 0.0, 0.0]]))
    with pytest.raises(MemoryUsageError, match="k must"):
        _sync(mem.search("vec", [1.0, 0.0, 0.0], k=0))
    hits = _sync(mem.search("vec", [0.9, 0.1, 0.0], k=1))
    assert hits[0].text == "a"


@workflow
async def mem_agent(customer: str) -> dict[str, object]:
    await session_put(customer, "last_topic", "refund")
    await remember(customer, ["asked about a refund for order A-1"], [{"kind": "note"}])
    await sleep(3600)  # unloads: everything after replays what came before
    topic = await session_get(customer, "last_topic")
    hits = await recall(customer, "refund request", 1)
    return {"topic": topic, "hit": hits[0]["text"]}


def test_workflow_memory_writes_once_across_replays(client: Client) -> None:
    handle = client.start(mem_agent, "cust-9")
    run_until_idle(client)
    assert handle.result(timeout=5) == {
        "topic": "refund",
        "hit": "asked about a refund for order A-1",
    }
    assert _count(client, "memory_kv") == 1
    assert _count(client, "memory_vectors") == 1
    # a step that ran again after a crash (same idempotency key) writes nothing new
    mem = LongTermMemory(client)
    ids = _sync(mem.add("cust-9", ["asked about a refund for order A-1"], ids=[f"{handle.id}:2:0"]))
    assert ids == [f"{handle.id}:2:0"]
    assert _count(client, "memory_vectors") == 1
