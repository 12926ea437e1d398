"""The dead-owner shortcut takes a run before its lease ends only from a provably dead owner:
same kernel boot, same PID namespace, and its pid gone, a zombie, or reused by a process
that started at another time. Containers that share a host name keep their leases."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spokehub import Client, RunStatus, Settings
from spokehub.runtime import identity
from spokehub.runtime.identity import dead_local_owners, owner_name, start_time, surely_dead
from tests import pg_chaos_app as app
from tests import pg_chaos_ledger as ledger
from tests.pg_chaos_support import HERE, WorkerProcess, wait_until

needs_proc = pytest.mark.skipif(
    identity.namespace_tag() is None, reason="needs Linux /proc for this PID namespace"
)


def _name_of(pid: int, started: str, tag: str | None = None) -> str:
    return f"host:{pid}:abcd1234.{tag or identity.namespace_tag()}.{started}"


@needs_proc
def test_an_owner_name_carries_the_namespace_and_the_start_time() -> None:
    me = owner_name("w")
    name, pid, token = me.rsplit(":", 2)
    assert (name, int(pid)) == ("w", os.getpid())
    _, tag, started = token.split(".")
    assert tag == identity.namespace_tag()
    assert started == start_time(os.getpid())
    assert not surely_dead(me)
    assert dead_local_owners([me, owner_name(None)], me) == []


@needs_proc
def test_only_a_provably_dead_owner_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = start_time(child.pid)
    child.wait()
    if started is None:  # it was gone before we looked: try a long-lived child instead
        pytest.skip("the child exited too fast to read its start time")
    gone = _name_of(child.pid, started)
    alive = _name_of(os.getpid(), start_time(os.getpid()) or "")
    recycled = _name_of(os.getpid(), "1")  # our pid, but a process that started at tick 1
    elsewhere = _name_of(child.pid, started, tag="0123456789")  # another namespace or boot
    legacy = f"host:{child.pid}:abcd1234"  # an owner named before start times were recorded
    assert dead_local_owners([gone, alive, recycled, elsewhere, legacy, "odd"], "me") == [
        gone,
        recycled,
    ]


@needs_proc
def test_a_zombie_owner_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        name = _name_of(child.pid, start_time(child.pid) or "")
        assert not surely_dead(name)
        os.kill(child.pid, signal.SIGKILL)
        wait_until(lambda: start_time(child.pid) is None, 10, "the child to become a zombie")
        assert surely_dead(name)  # not reaped yet, yet holds no lease work
    finally:
        child.kill()
        child.wait()


def test_no_proc_means_no_shortcut(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(identity, "PROC", tmp_path)
    identity.namespace_tag.cache_clear()
    try:
        assert identity.namespace_tag() is None
        assert owner_name("w").rsplit(":", 1)[1].count(".") == 0
        assert not surely_dead(f"w:{os.getpid() + 10**6}:abcd1234.x.1")
    finally:
        identity.namespace_tag.cache_clear()


# -- two PID namespaces, one host name ---------------------------------------------------------
def _unshare_available() -> str | None:
    if sys.platform != "linux":
        return "PID namespaces are Linux only"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    if os.geteuid() != 0:
        return "unshare --pid needs root (run the suite as root to include this test)"
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=30
    )
    if probe.returncode != 0:
        return f"unshare --pid is not allowed here: {probe.stderr.decode().strip()}"
    return None


def _in_namespace(url: str, tmp: Path, name: str, spacers: int) -> WorkerProcess:
    """A worker in a PID namespace of its own; ``spacers`` processes run before it, so its pid
    there is ``spacers + 2`` (the shell is pid 1)."""
    worker = f"{sys.executable} {HERE / 'pg_chaos_worker.py'} '{url}' 1"
    script = "/bin/true; " * spacers + worker
    return WorkerProcess(
        url,
        tmp / "ledger.db",
        tmp / f"{name}.log",
        settings={
            "SPOKEHUB_LEASE_SECONDS": "60",
            "SPOKEHUB_POLL_INTERVAL": "0.2",
            "PYTHONPATH": str(HERE.parent),
        },
        command=["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script],
        expect_ready=True,
    )


@pytest.fixture
def two_namespaces(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, Path, list[WorkerProcess]]]:
    reason = _unshare_available()
    if reason is not None:
        pytest.skip(reason)
    ledger.create(tmp_path / "ledger.db")
    procs: list[WorkerProcess] = []
    try:
        yield pg_url, tmp_path, procs
    finally:
        for p in procs:
            p.kill()


@pytest.mark.timeout(90)
def test_a_worker_in_another_pid_namespace_with_the_same_host_name_keeps_its_lease(
    two_namespaces: tuple[str, Path, list[WorkerProcess]],
) -> None:
    url, tmp, procs = two_namespaces
    client = Client(settings=Settings(database_url=url))
    try:
        handle = client.start(app.long_flow.options(run_id="shared-host"), 6.0)
        a = _in_namespace(url, tmp, "a", spacers=3)
        procs.append(a)
        assert a.owner.split(":")[1] == "5", a.owner  # its pid in its own namespace
        attempts = lambda: [x for x in ledger.attempts(tmp / "ledger.db") if x.run == handle.id]  # noqa: E731
        wait_until(attempts, 20, "A to start the long step")
        # B is pid 2 in its namespace, where pid 5 does not exist, and both report the host
        # name: without the namespace check B would take A's live run at once.
        b = _in_namespace(url, tmp, "b", spacers=0)
        procs.append(b)
        assert b.owner.split(":")[0] == a.owner.split(":")[0]
        time.sleep(2.0)  # B swept for dead owners at start and has polled ten times since
        run = client.get_run(handle.id)
        assert run.lease_owner == a.owner, f"B took A's live run: {run.lease_owner}"
        assert len(attempts()) == 1, attempts()
        result = handle.result(timeout=30)
        assert result["slow"]["pid"] == result["quick"]["pid"] == 5
        final = client.get_run(handle.id)
        assert final.status is RunStatus.COMPLETED
        assert final.recoveries == 0
        assert len(attempts()) == 2  # one execution of each step, both by A
    finally:
        client.close()
