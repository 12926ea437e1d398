"""Scheduled drift checks: a durable workflow of rounds separated by timers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from spokehub import Client
from spokehub.distribution import service
from spokehub.distribution.demo.scenario import DIST
from spokehub.distribution.watch import WatchRequest, drift_watch
from spokehub.testing import FakeClock, run_until_idle
from tests.dist_support import AUTO_GATE, demo_hub


def test_drift_rounds_heal_then_find_nothing(
    client: Client, clock: FakeClock, tmp_path: Path
) -> None:
    with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _):
        handle = client.start(
            *_rollout_args(client, hub),
        )
        run_until_idle(client)
        assert handle.result()["status"] == "Succeeded"
        css = hub / "targets/web/dist/tokens.css"
        good = css.read_text()
        css.write_text(good + "/* hand */\n")
        req = WatchRequest(
            hub=str(hub), distribution=DIST, db=client.settings.database_url, every=600, rounds=2
        )
        watch = client.start(drift_watch, req)
        started = clock.now()
        run_until_idle(client)
        rounds = watch.result()
        assert css.read_text() == good
    assert rounds[0]["corrected"] == {"web": ["dist/tokens.css"]}
    assert rounds[1]["drifted"] == {}
    assert clock.now() - started >= 600  # the second round waited for its durable timer


def _rollout_args(client: Client, hub: Path) -> tuple[object, ...]:
    from spokehub.distribution.rollout import rollout_workflow
    from spokehub.distribution.steps import RolloutRequest

    req = RolloutRequest(
        hub=str(hub), distribution=DIST, release="r1", db=client.settings.database_url
    )
    return (rollout_workflow, req)


def test_service_starts_a_watch_that_finds_nothing_before_any_rollout(
    client: Client, tmp_path: Path
) -> None:
    with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _):
        handle = asyncio.run(service.start_watch(client, hub, DIST, every=60, rounds=1))
        run_until_idle(client)
        assert handle.result() == [{"round": 1, "drifted": {}, "corrected": {}, "fighting": []}]
