"""Semantic mapping on a labelled set of 31 field pairs, reviewed by a human, stored, reused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from spokehub import Client, workflow
from spokehub.intelligence.mapping import (
    SchemaMapping,
    fields_of,
    load_mapping,
    map_schema,
    review_mapping,
    save_mapping,
)
from spokehub.runtime.client import _sync
from spokehub.testing import run_until_idle

CASES = json.loads((Path(__file__).parent / "data" / "mapping_pairs.json").read_text())["cases"]


def test_top1_accuracy_on_the_labelled_set() -> None:
    total = correct = 0
    for case in CASES:
        proposal = map_schema(case["source"], case["target"])
        pairs = proposal.pairs()
        for source, want in case["truth"].items():
            total += 1
            correct += pairs.get(source) == want
    assert total >= 30
    assert correct / total >= 0.9, f"top-1 accuracy {correct}/{total}"


def test_scores_flag_doubtful_pairs_and_types_matter() -> None:
    proposal = map_schema(
        [{"name": "is_active", "type": "boolean"}, {"name": "price", "type": "number"}],
        [{"name": "active", "type": "boolean"}, {"name": "amount", "type": "number"}],
        threshold=0.99,
    )
    assert proposal.pairs() == {"is_active": "active", "price": "amount"}
    assert len(proposal.needs_review) == 2  # nothing is that sure
    assert all(m.type == 1.0 for m in proposal.matches)


class Nested(BaseModel):
    city: str = Field(description="Town of the address")
    zip: str = Field(description="Postal code")


class Src(BaseModel):
    full_name: str = Field(description="Customer's full name")
    address: Nested


def test_json_schema_and_pydantic_inputs_and_nested_transform() -> None:
    specs = fields_of(Src)
    assert [f.name for f in specs] == ["full_name", "address.city", "address.zip"]
    target = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Name of the customer"},
            "location": {
                "type": "object",
                "properties": {
                    "town": {"type": "string", "description": "City"},
                    "postcode": {"type": "string", "description": "ZIP or postal code"},
                },
            },
        },
    }
    proposal = map_schema(Src, target)
    assert proposal.pairs() == {
        "full_name": "name",
        "address.city": "location.town",
        "address.zip": "location.postcode",
    }
    record = {"full_name": "Ada L.", "address": {"city": "Lyon", "zip": "69001"}}
    assert proposal.transform(record) == {
        "name": "Ada L.",
        "location": {"town": "Lyon", "postcode": "69001"},
    }
    with pytest.raises(ValueError, match="at least one field"):
        map_schema([], target)
    with pytest.raises(ValueError, match="properties"):
        fields_of({"type": "string"})


@workflow
async def onboard_feed(case: dict[str, Any]) -> dict[str, Any]:
    proposal = map_schema(case["source"], case["target"],
                          source_id=case["source_id"], target_id=case["target_id"])  # fmt: skip
    accepted = await review_mapping(proposal, assignees=["dana", "lee"])
    return accepted.to_dict()


def test_low_score_pairs_go_to_a_human_and_the_mapping_is_reused(client: Client) -> None:
    case = CASES[2]
    handle = client.start(onboard_feed, case)
    run_until_idle(client)
    assert handle.status().value == "waiting"  # some pairs were not sure enough
    client.approve(handle.id, by="dana")
    run_until_idle(client)
    accepted = SchemaMapping.from_dict(handle.result(timeout=10))
    assert accepted.accepted
    assert accepted.reviewer == "dana"
    assert _sync(load_mapping(client, "erp.order", "bi.sale")) is None
    assert _sync(save_mapping(client, accepted)) == 1
    again = _sync(load_mapping(client, "erp.order", "bi.sale"))
    assert again is not None
    assert again.pairs() == accepted.pairs()
    assert again.transform({"order_no": "SO-1", "vat": 2.5}) == {
        "sale_reference": "SO-1",
        "tax": 2.5,
    }
    with pytest.raises(ValueError, match="accepted"):
        _sync(save_mapping(client, map_schema(case["source"], case["target"])))
