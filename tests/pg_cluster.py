"""A throwaway PostgreSQL cluster for the tests that stop or crash-restart the server.

The machine's PostgreSQL may serve other databases (a developer's, another project's, other
test runs), so no test ever stops or restarts it: it is only used through test databases
and schemas (``tests/pg.py``). A test that needs to take the server down creates its own
cluster instead: ``initdb`` in a temporary directory, a free loopback port, ``pg_ctl`` to
start, crash-stop (``-m immediate``) and start it again, and, whatever happens in the test,
stop it and remove the directory at the end.

The binaries are Debian's (``/usr/lib/postgresql/<version>/bin``) or any ``initdb`` on the
PATH. PostgreSQL refuses to run as root, so under root the cluster runs as the ``postgres``
user (``runuser``) in a directory that user owns. Without the binaries the test skips with the
reason (or fails under ``SPOKEHUB_REQUIRE_POSTGRES=1``, as CI sets).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HOST = "127.0.0.1"
RUN_AS = "postgres"


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (newest Debian version first)."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in debian:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ThrowawayCluster:
    """One PostgreSQL cluster of the test's own, on a free port, in a temporary directory."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="spokehub-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@{HOST}:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam(RUN_AS)  # KeyError: no postgres user to run the server as
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", RUN_AS, "--"]

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        out = subprocess.run(
            [*self._as, str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed:\n{out.stdout}{out.stderr}")

    def init(self) -> None:
        # --no-sync: initdb's files need not survive an OS crash, only a server crash.
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--no-instructions",
        )

    def start(self) -> float:
        """Start the server (crash recovery first, after a crash-stop); returns when it answers."""
        options = (
            f"-c listen_addresses={HOST} -c port={self.port} -c unix_socket_directories='' "
            "-c max_connections=100 -c recovery_init_sync_method=syncfs"
        )
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log),
            "-o", options,
        )  # fmt: skip
        return time.time()

    def stop(self, mode: str = "immediate") -> float:
        """Stop the server; ``immediate`` is a crash (no checkpoint, backends killed)."""
        at = time.time()
        self._run("pg_ctl", "stop", "-w", "-D", str(self.data), "-m", mode)
        return at

    def running(self) -> bool:
        out = subprocess.run(
            [*self._as, str(self.bindir / "pg_ctl"), "status", "-D", str(self.data)],
            capture_output=True,
        )
        return out.returncode == 0

    def restart(self, down_for: float = 1.0) -> tuple[float, float]:
        """Crash-stop, stay down ``down_for`` seconds, start: (stopped, ready)."""
        stopped = self.stop()
        time.sleep(down_for)
        return stopped, self.start()

    def ensure_started(self) -> float:
        return time.time() if self.running() else self.start()

    def destroy(self) -> None:
        if self.data.exists() and self.running():
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("SPOKEHUB_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"SPOKEHUB_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[ThrowawayCluster]:
    """A started cluster of its own; stopped and removed afterwards, also on failure."""
    bindir = find_bindir()
    if bindir is None:
        _unavailable(
            "initdb/pg_ctl not found (apt install postgresql): this test restarts a server"
        )
    assert bindir is not None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            _unavailable(f"running as root without a {RUN_AS!r} user to run a throwaway server")
    cluster = ThrowawayCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
