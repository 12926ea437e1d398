"""The tests leave the machine's PostgreSQL alone: a test that crash-restarts a server uses a
throwaway cluster of its own, removed at the end (also when the test fails)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.pg import BASE_URL, require_postgres
from tests.pg_cluster import ThrowawayCluster, throwaway_cluster

HERE = Path(__file__).resolve().parent


def _started_at(url: str) -> object:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
    assert row is not None
    return row[0]


def test_no_test_stops_or_restarts_the_machine_postgresql() -> None:
    """Only ``pg_cluster.py`` runs server-control tools, and only on its own data directory."""
    control = re.compile(r"pg_ctlcluster|systemctl|service\s+postgresql|\bpg_ctl\b|postmaster")
    offenders = []
    for path in sorted(HERE.rglob("*.py")):
        if path.name in {"pg_cluster.py", Path(__file__).name}:
            continue
        text = path.read_text()
        # Docstrings may say what a test does; code may not call the tools.
        code = re.sub(r'"""(?:.|\n)*?"""', "", text)
        if control.search(code):
            offenders.append(str(path.relative_to(HERE)))
    assert not offenders, f"these test modules control a PostgreSQL server: {offenders}"


@pytest.mark.timeout(180)
def test_crash_restarting_a_throwaway_cluster_leaves_the_shared_server_running() -> None:
    require_postgres()
    shared_before = _started_at(BASE_URL)
    with throwaway_cluster() as cluster:
        assert cluster.port != 5432
        first = _started_at(cluster.url)
        cluster.restart(down_for=0.1)
        assert _started_at(cluster.url) != first, "the throwaway cluster did not restart"
        root = cluster.root
    assert not root.exists(), "the throwaway cluster's directory was left behind"
    assert _started_at(BASE_URL) == shared_before, "the machine's PostgreSQL was restarted"


@pytest.mark.timeout(120)
def test_a_failing_test_still_removes_its_cluster() -> None:
    seen: list[ThrowawayCluster] = []

    def failing_test() -> None:
        with throwaway_cluster() as cluster:
            seen.append(cluster)
            assert cluster.running()
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError):
        failing_test()
    (cluster,) = seen
    root = cluster.root
    assert not cluster.running()
    assert not root.exists()
