"""The dashboard's integrations page: breakers, schedules with next fire times, deliveries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spokehub import Client
from spokehub.integrations import BreakerPolicy, http, schedule_store
from spokehub.integrations.schedules import Schedule
from spokehub.integrations.webhooks import deliver_webhook, delivery_run_id
from tests.browser.live_server import Served, post_login, thread_server


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with thread_server(f"sqlite:///{tmp_path / 'dash.db'}") as server:
        yield server


def test_integrations_page(served: Served) -> None:
    policy = BreakerPolicy(failure_threshold=1, failure_rate=None)
    http.state.record("dash.example.com:443", False, time.time(), policy)
    with Client(served.db_url) as client:
        schedule = Schedule(name="dash-nightly", workflow="w", cron="0 3 * * *")
        asyncio.run(schedule_store.save(client.store, schedule, time.time(), "test"))
        run_id = delivery_run_id("whsub_x", "ev:1")
        client.start(
            deliver_webhook.options(run_id=run_id), "whsub_x", {"id": "ev:1", "event": "run.failed"}
        )
    with httpx.Client(base_url=served.url, timeout=10) as browser:
        answer = post_login(browser, served.tokens["viewer"], "/ui/integrations")
        assert answer.status_code == 303
        page = browser.get("/ui/integrations")
        assert page.status_code == 200
        assert "dash.example.com:443" in page.text
        assert ">open<" in page.text
        assert "dash-nightly" in page.text
        assert "0 3 * * *" in page.text
        assert run_id in page.text
        assert "run.failed" in page.text
        assert 'href="/ui/integrations"' in page.text
