"""Debounce and throttle of starts, on both backends, with a fake clock."""

from __future__ import annotations

import pytest

from spokehub import Client, ConfigurationError, workflow
from spokehub.integrations import starts
from spokehub.integrations.scheduler import Scheduler
from spokehub.runtime.client import _sync
from spokehub.testing import FakeClock, run_until_idle


@workflow(name="itest.starts.reindex")
async def reindex(doc: str) -> str:
    return f"indexed {doc}"


def _runs(client: Client) -> list[str]:
    return sorted(r.id for r in client.list_runs(limit=100) if r.workflow == "itest.starts.reindex")


def test_debounce_starts_one_run_after_the_last_of_a_burst(
    client: Client, clock: FakeClock
) -> None:
    starts.enable(client)
    wf = reindex.options(debounce=30, key="tenant-a")
    handles = []
    for i in range(5):
        handles.append(client.start(wf, f"doc-{i}"))
        clock.advance(10)  # each start comes before the previous one's 30 s are over
    assert len({h.id for h in handles}) == 1
    assert _runs(client) == []  # nothing yet: the burst is not over
    assert _sync(starts.fire_due(client)) == []
    other = client.start(reindex.options(debounce=30, key="tenant-b"), "other")
    assert other.id != handles[0].id
    clock.advance(21)  # 30 s after the last start of tenant-a's burst
    fired = _sync(starts.fire_due(client))
    assert fired == [handles[0].id]
    run_until_idle(client, advance_time=False)
    assert handles[0].result() == "indexed doc-4"  # the last input wins
    assert _sync(starts.fire_due(client)) == []  # fired once
    # A new start after the burst begins a new one.
    later = client.start(wf, "doc-9")
    assert later.id != handles[0].id
    clock.advance(31)
    scheduler = Scheduler(client)  # workers fire bursts along with schedules
    assert set(_sync(scheduler.tick())) == {later.id, other.id}
    run_until_idle(client, advance_time=False)
    assert len(_runs(client)) == 3


def test_a_burst_whose_firing_worker_died_is_fired_once_again(
    client: Client, clock: FakeClock
) -> None:
    starts.enable(client)
    handle = client.start(reindex.options(debounce=5, key="k"), "x")
    clock.advance(6)
    # A worker claimed the burst and died before starting its run.
    assert _sync(starts._claim(client, handle.id, clock.now() - 1, "open", clock.now()))
    assert _sync(starts.fire_due(client)) == []  # claimed recently: left to that worker
    clock.advance(starts.STALE_FIRING + 1)
    assert _sync(starts.fire_due(client)) == [handle.id]
    run_until_idle(client, advance_time=False)
    assert handle.result() == "indexed x"


def test_throttle_limits_starts_per_key(client: Client, clock: FakeClock) -> None:
    starts.enable(client)
    wf = reindex.options(throttle=(3, 60, "tenant-a"))
    for i in range(3):
        client.start(wf, f"d{i}")
    with pytest.raises(starts.Throttled) as caught:
        client.start(wf, "d3")
    assert caught.value.retry_after == pytest.approx(20)
    client.start(reindex.options(throttle=(3, 60, "tenant-b")), "elsewhere")  # its own bucket
    clock.advance(20)
    client.start(wf, "d4")
    assert len(_runs(client)) == 5


def test_options_are_checked_and_need_the_integrations_layer(client: Client) -> None:
    with pytest.raises(ConfigurationError, match=r"starts\.enable"):
        client.start(reindex.options(debounce=5, key="k"), "x")
    for bad, message in [
        ({"debounce": 0, "key": "k"}, "positive"),
        ({"debounce": 5}, "needs key"),
        ({"key": "k"}, "goes with debounce"),
        ({"throttle": (0, 60, "k")}, "starts >= 1"),
        ({"throttle": (1, 60)}, "throttle is"),
    ]:
        with pytest.raises(ValueError, match=message):
            reindex.options(**bad)  # type: ignore[arg-type]
