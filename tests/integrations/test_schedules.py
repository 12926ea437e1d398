"""Schedules: declaration checks, exactly one run per tick, catch-up, CLI, worker processes."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from spokehub import Client, EventKind, RegistrationError, workflow
from spokehub.cli.app import app
from spokehub.integrations import schedule_store
from spokehub.integrations.scheduler import Scheduler, declared
from spokehub.integrations.schedules import Schedule, ScheduleError, run_id_for
from spokehub.runtime.definitions import Registry
from spokehub.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_100.0  # a multiple of 300: a '*/5 * * * *' tick


@workflow(name="itest.every5", schedule="*/5 * * * *", timezone="Europe/Paris")
async def every5() -> str:
    return "ok"


@workflow(name="itest.report")
async def report(team: str = "ops") -> str:
    return team


def _registry(*wfs: Any) -> Registry:
    reg = Registry()
    for wf in wfs:
        reg.workflows[wf.name] = wf
    return reg


@pytest.fixture
def at_tick(clock: FakeClock, client: Client) -> FakeClock:
    clock.set(T0)
    _sync(client, client.ensure_schema())
    return clock


def _runs(client: Client, prefix: str) -> list[str]:
    return sorted(r.id for r in client.list_runs(limit=1000) if r.id.startswith(prefix))


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(RegistrationError, match="invalid cron"):
        workflow(name="itest.bad1", schedule="61 * * * *")(lambda: None)
    with pytest.raises(RegistrationError, match="unknown time zone"):
        workflow(name="itest.bad2", schedule="* * * * *", timezone="Mars/Olympus")(lambda: None)
    with pytest.raises(RegistrationError, match="catchup"):
        workflow(name="itest.bad3", schedule="* * * * *", catchup="some")(lambda: None)
    for kwargs, message in [
        ({"cron": "every day"}, "invalid cron"),
        ({"timezone": "Nowhere/City"}, "unknown time zone"),
        ({"timezone": "../etc"}, "unknown time zone"),
        ({"catchup": "never"}, "catch-up is one of"),
        ({"max_catchup": 0}, "max_catchup"),
        ({"name": "has space"}, "schedule name"),
    ]:
        base: dict[str, Any] = {"name": "n", "workflow": "w", "cron": "* * * * *", **kwargs}
        with pytest.raises(ScheduleError, match=message):
            Schedule(**base)


def test_ticks_follow_the_time_zone_across_dst() -> None:
    daily = Schedule(name="d", workflow="w", cron="30 2 * * *", timezone="Europe/Paris")
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 3, 28, 12, 0, tzinfo=paris).timestamp()
    ticks = [datetime.fromtimestamp(t, paris) for t in daily.next_times(start, 3)]
    # 02:30 does not exist on the spring-forward night; croniter moves it to 03:00.
    assert [t.strftime("%m-%d %H:%M") for t in ticks] == [
        "03-29 03:00",
        "03-30 02:30",
        "03-31 02:30",
    ]
    assert run_id_for("d", T0) == "schedule:d:2023-11-14T22:15:00Z"


def test_each_tick_starts_one_run_whatever_the_number_of_schedulers(
    client: Client, at_tick: FakeClock
) -> None:
    reg = _registry(every5)
    schedulers = [Scheduler(client, registry=reg) for _ in range(3)]
    _sync(client, schedulers[0].sync_declared())
    for _ in range(5):
        at_tick.advance(300)
        created = [_sync(client, s.tick()) for s in schedulers]
        assert sum(len(c) for c in created) == 1  # one start created it, the others found it
    runs = _runs(client, "schedule:itest.every5:")
    assert len(runs) == 5
    assert runs[0] == run_id_for("itest.every5", T0 + 300)
    for run_id in runs:
        starts = [e for e in client.handle(run_id).events() if e.kind is EventKind.RUN_STARTED]
        assert len(starts) == 1
    (row,) = _sync(client, schedule_store.list_all(client.store))
    assert row.last_fire_at == T0 + 1500
    assert row.next_fire_at == T0 + 1800


@pytest.mark.parametrize(("policy", "expected"), [("skip", 0), ("latest", 1), ("all", 5)])
def test_catch_up_after_a_stop(
    client: Client, at_tick: FakeClock, policy: str, expected: int
) -> None:
    reg = _registry(report)
    name = f"catch-{policy}"
    schedule = Schedule(
        name=name,
        workflow="itest.report",
        cron="*/5 * * * *",
        catchup=policy,  # type: ignore[arg-type]
        max_catchup=5,
        input={"team": "infra"},
    )
    _sync(client, schedule_store.save(client.store, schedule, at_tick.now(), "test"))
    scheduler = Scheduler(client, registry=reg)
    at_tick.advance(300)
    assert len(_sync(client, scheduler.tick())) == 1
    at_tick.advance(3600 + 120)  # 12 ticks pass while no worker runs; the last is 2 min ago
    created = _sync(client, scheduler.tick())
    assert len(created) == expected
    if policy != "skip":
        assert created[-1] == run_id_for(name, T0 + 300 + 3600)
    runs = _runs(client, f"schedule:{name}:")
    assert len(runs) == 1 + expected
    assert client.get_run(runs[-1]).input == {"team": "infra"}
    at_tick.advance(180)  # the schedule goes on from there
    assert len(_sync(client, scheduler.tick())) == 1


def test_a_late_tick_within_grace_still_runs_with_skip(client: Client, at_tick: FakeClock) -> None:
    schedule = Schedule(name="g", workflow="itest.report", cron="*/5 * * * *")
    _sync(client, schedule_store.save(client.store, schedule, at_tick.now(), "test"))
    at_tick.advance(300 + 30)
    assert len(_sync(client, Scheduler(client, registry=_registry(report)).tick())) == 1


def test_pause_resume_and_unknown_workflows(client: Client, at_tick: FakeClock) -> None:
    reg = _registry(report)
    scheduler = Scheduler(client, registry=reg)
    s = Schedule(name="p", workflow="itest.report", cron="*/5 * * * *")
    _sync(client, schedule_store.save(client.store, s, at_tick.now(), "test"))
    other = Schedule(name="elsewhere", workflow="not.here", cron="*/5 * * * *")
    _sync(client, schedule_store.save(client.store, other, at_tick.now(), "test"))
    _sync(client, schedule_store.set_paused(client.store, "p", True, at_tick.now()))
    at_tick.advance(900)
    assert _sync(client, scheduler.tick()) == []
    row = _sync(client, schedule_store.set_paused(client.store, "p", False, at_tick.now()))
    assert row.next_fire_at == T0 + 1200  # from now on; paused ticks are not caught up
    at_tick.advance(300)
    assert len(_sync(client, scheduler.tick())) == 1
    # The schedule of a workflow this process does not know waits for a worker that does.
    (elsewhere,) = [
        r
        for r in _sync(client, schedule_store.list_all(client.store))
        if r.schedule.name == "elsewhere"
    ]
    assert elsewhere.next_fire_at == T0 + 300
    _sync(client, schedule_store.remove(client.store, "p"))
    with pytest.raises(schedule_store.ScheduleNotFound):
        _sync(client, schedule_store.get(client.store, "p"))
    assert [s.name for s in declared(_registry(every5, report))] == ["itest.every5"]


def _sync(client: Client, coro: Any) -> Any:
    from spokehub.runtime.client import _sync as run

    return run(coro)


def _cli(db: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["--db", db, "schedules", *args], env={"COLUMNS": "200"})


def test_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    bad = _cli(db, "add", "x", "--workflow", "w", "--cron", "99 * * * *")
    assert bad.exit_code == 2
    assert "invalid cron" in bad.stderr
    assert (
        _cli(
            db, "add", "x", "--workflow", "w", "--cron", "* * * * *", "--timezone", "Foo/Bar"
        ).exit_code
        == 2
    )
    assert (
        _cli(db, "add", "x", "--workflow", "w", "--cron", "* * * * *", "--input", "[1]").exit_code
        == 2
    )
    assert _cli(db, "list").stdout.startswith("no schedules")
    added = _cli(
        db,
        "add",
        "nightly",
        "--workflow",
        "itest.report",
        "--cron",
        "0 3 * * *",
        "--timezone",
        "Europe/Paris",
        "--input",
        '{"team": "web"}',
        "--json",
    )
    assert added.exit_code == 0, added.stderr
    (row,) = json.loads(added.stdout)
    assert row["source"] == "cli"
    assert len(row["next_fire_times"]) == 3
    listed = _cli(db, "list")
    assert "nightly" in listed.stdout
    assert "active" in listed.stdout
    paused = json.loads(_cli(db, "pause", "nightly", "--json").stdout)
    assert paused[0]["paused"] is True
    assert paused[0]["next_fire_times"] == []
    assert json.loads(_cli(db, "resume", "nightly", "--json").stdout)[0]["paused"] is False
    assert _cli(db, "remove", "nightly").exit_code == 0
    missing = _cli(db, "remove", "nightly")
    assert missing.exit_code == 3
    assert "spokehub schedules list" in missing.stderr


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait(10)


@pytest.mark.slow
def test_three_worker_processes_start_one_run_per_tick(
    pg_url: str, tmp_path: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPOKEHUB_SCHEDULER_INTERVAL": "0.2"}
    for i in range(3):
        with open(tmp_path / f"w{i}.log", "wb") as log:
            cmd = [
                sys.executable,
                "-m",
                "spokehub.cli",
                "--db",
                pg_url,
                "worker",
                "--app",
                "tests.integrations.sched_app",
                "--concurrency",
                "4",
            ]
            workers.append(subprocess.Popen(cmd, stdout=log, stderr=log, env=env))
    with Client(pg_url) as client:
        deadline = time.time() + 60
        while time.time() < deadline and len(_runs(client, "schedule:itest.tick:")) < 7:
            time.sleep(0.5)
        for p in workers:
            p.kill()
            p.wait(10)
        runs = _runs(client, "schedule:itest.tick:")
        assert len(runs) >= 6, [(tmp_path / f"w{i}.log").read_text()[-1500:] for i in range(3)]
        stamps = [datetime.fromisoformat(r.split(":", 2)[2]).timestamp() for r in runs]
        gaps = {round(b - a) for a, b in itertools.pairwise(stamps)}
        assert gaps == {2}  # every tick once: no gap, no duplicate
        for run_id in runs:
            starts = [e for e in client.handle(run_id).events() if e.kind is EventKind.RUN_STARTED]
            assert len(starts) == 1
