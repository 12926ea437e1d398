"""SLOs per workflow from real runs on SQLite: percentiles, error and retry rates, RAG status."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from spokehub import Client
from spokehub.ops.slo import (
    Rag,
    SloTarget,
    load_targets,
    parse_targets,
    percentile,
    rag,
    slo_report,
)
from spokehub.testing import FakeClock, run_until_idle
from tests.browser.dash_app import dash_order, dash_wait


def finish_wait_run(client: Client, seconds: float) -> None:
    handle = client.start(dash_wait, seconds)
    run_until_idle(client)
    client.send_signal(handle.id, "go", 1)
    run_until_idle(client)
    assert handle.result() == "went 1"


def test_durations_percentiles_and_status_against_targets(client: Client) -> None:
    for seconds in (10.0, 20.0, 30.0, 40.0, 100.0):
        finish_wait_run(client, seconds)
    targets = {"dash_wait": SloTarget(p50_seconds=50, p95_seconds=90, error_rate=0.1)}
    [report] = asyncio.run(slo_report(client, targets))
    assert (report.workflow, report.finished, report.completed, report.failed) == (
        "dash_wait",
        5,
        5,
        0,
    )
    p50, p95 = report.measure("p50_seconds"), report.measure("p95_seconds")
    assert (p50.value, p50.status) == (30.0, Rag.GREEN)
    assert (p95.value, p95.status) == (100.0, Rag.RED)  # nearest rank: the slowest of five
    assert report.measure("error_rate").value == 0.0
    assert report.measure("retry_rate").status is Rag.NONE  # no target
    assert report.status is Rag.RED
    assert report.to_dict()["measures"]["p95_seconds"] == {
        "value": 100.0,
        "target": 90.0,
        "status": "red",
    }


def test_error_rate_retry_rate_and_the_window(client: Client, clock: FakeClock) -> None:
    for kwargs in ({"flaky": True}, {"carrier_down": True}, {}, {}):
        client.start(dash_order, "x", **kwargs)
    run_until_idle(client)
    targets = {"dash_order": SloTarget(error_rate=0.3, retry_rate=0.5)}
    [report] = asyncio.run(slo_report(client, targets))
    assert (report.finished, report.failed) == (4, 1)
    # attempts: flaky 2+1, carrier down 1+3, two clean runs 2 each = 11; retries 1 + 2 = 3
    assert (report.step_attempts, report.retries) == (11, 3)
    assert report.measure("error_rate").value == 0.25
    assert report.measure("error_rate").status is Rag.AMBER  # 0.25 is 83% of 0.3
    assert report.measure("retry_rate").value == pytest.approx(3 / 11)
    assert report.measure("retry_rate").status is Rag.GREEN
    assert report.status is Rag.AMBER
    clock.advance(7200)
    [later] = asyncio.run(slo_report(client, targets, window=3600))
    assert later.finished == 0
    assert later.status is Rag.NO_DATA
    with pytest.raises(ValueError, match="window"):
        asyncio.run(slo_report(client, window=0))


def test_in_flight_runs_are_counted_apart(client: Client) -> None:
    client.start(dash_wait, 0.0)
    run_until_idle(client)
    [report] = asyncio.run(slo_report(client))
    assert (report.finished, report.in_flight, report.status) == (0, 1, Rag.NONE)


def test_rag_edges_and_percentiles() -> None:
    assert rag(0.79, 1.0) is Rag.GREEN
    assert rag(0.8, 1.0) is Rag.AMBER
    assert rag(1.0, 1.0) is Rag.AMBER
    assert rag(1.01, 1.0) is Rag.RED
    assert rag(0.0, 0.0) is Rag.GREEN
    assert rag(0.01, 0.0) is Rag.RED
    assert rag(None, 1.0) is Rag.NO_DATA
    assert rag(5.0, None) is Rag.NONE
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0


def test_target_file(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text("[slo.order_saga]\np95_seconds = 30\nerror_rate = 0.01\nretry_rate = 0.1\n")
    assert load_targets(path) == {
        "order_saga": SloTarget(p95_seconds=30.0, error_rate=0.01, retry_rate=0.1)
    }
    path.write_text("[slo.order_saga]\np95 = 30\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['p95'\]; use p50_seconds"):
        load_targets(path)
    path.write_text("[slo.order_saga\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_targets(path)
    with pytest.raises(ValueError, match="must be a number"):
        parse_targets({"slo": {"w": {"error_rate": "high"}}})
    with pytest.raises(ValueError, match="must be a table"):
        parse_targets({"slo": {"w": 3}})
    with pytest.raises(ValueError, match="table of workflow tables"):
        parse_targets({"slo": 3})
