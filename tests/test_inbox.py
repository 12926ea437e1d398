"""The approvals inbox across runs, from real runs' ledgers."""

from __future__ import annotations

import asyncio

import pytest

from spokehub import Client
from spokehub.ops.inbox import pending_approvals
from spokehub.testing import FakeClock, run_until_idle
from tests.browser.dash_app import dash_review, dash_wait


def test_pending_approvals_across_runs(client: Client, clock: FakeClock) -> None:
    first = client.start(dash_review, "a")
    run_until_idle(client)
    clock.advance(5)
    second = client.start(dash_review, "b")
    client.start(dash_wait, 0.0)  # waits for a signal, not an approval: not in the inbox
    run_until_idle(client)
    items = asyncio.run(pending_approvals(client))
    assert [(i.run_id, i.workflow, i.name) for i in items] == [
        (first.id, "dash_review", "editor"),
        (second.id, "dash_review", "editor"),
    ]
    assert items[0].assignees == ("ann", "bo", "role:approver")
    assert items[0].subject == {"doc": "a"}
    assert items[0].deadline is None
    assert items[1].requested_at == pytest.approx(items[0].requested_at + 5)  # type: ignore[operator]
    assert items[0].to_dict()["assignees"] == ["ann", "bo", "role:approver"]
    assert asyncio.run(pending_approvals(client, assignee="cy")) == []
    assert asyncio.run(pending_approvals(client, assignee="cy", role="viewer")) == []
    assert len(asyncio.run(pending_approvals(client, assignee="cy", role="approver"))) == 2
    assert len(asyncio.run(pending_approvals(client, assignee="bo"))) == 2

    client.approve(first.id, by="ann")  # decided, not yet taken in: already gone from the inbox
    assert [i.run_id for i in asyncio.run(pending_approvals(client))] == [second.id]
    run_until_idle(client)
    assert first.result() == "a approved by ann"
    assert [i.run_id for i in asyncio.run(pending_approvals(client))] == [second.id]
    with pytest.raises(ValueError, match="limit"):
        asyncio.run(pending_approvals(client, limit=0))
