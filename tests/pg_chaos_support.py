"""Processes and the PostgreSQL server, for the PostgreSQL failure tests.

``WorkerProcess`` runs ``pg_chaos_worker.py``; ``restart_postgres`` stops the local server
the way a crash does (``pg_ctl -m immediate``: no checkpoint, every backend killed) and
starts it again, waiting until it answers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from tests import pg_chaos_ledger

HERE = Path(__file__).resolve().parent
PG_VERSION = os.environ.get("SPOKEHUB_TEST_PG_VERSION", "15")
PG_CLUSTER = os.environ.get("SPOKEHUB_TEST_PG_CLUSTER", "main")
PG_HOST = "127.0.0.1"


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> float:
    """Poll ``predicate`` until it holds; return how long that took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"gave up after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


class WorkerProcess:
    """``pg_chaos_worker.py`` in a subprocess; the constructor returns once it is ready."""

    def __init__(
        self,
        url: str,
        ledger: Path,
        log: Path,
        *,
        concurrency: int = 4,
        settings: dict[str, str] | None = None,
        command: Sequence[str] | None = None,
        ready_timeout: float = 90.0,
    ) -> None:
        env = {**os.environ, pg_chaos_ledger.LEDGER_ENV: str(ledger), **(settings or {})}
        self.log_path = log
        self._log: IO[bytes] = open(log, "ab")  # noqa: SIM115 - closed in wait()
        args = command or [
            sys.executable,
            str(HERE / "pg_chaos_worker.py"),
            url,
            str(concurrency),
        ]
        self.proc = subprocess.Popen(
            list(args), stdout=subprocess.PIPE, stderr=self._log, env=env, text=True
        )
        self.pid = self.proc.pid
        self.started = time.time()
        self.owner = ""
        if command is None:
            assert self.proc.stdout is not None
            line = self._readline(ready_timeout)
            if not line.startswith("ready"):
                self.kill()
                raise AssertionError(f"worker did not start ({line!r}); see {log}")
            self.owner = line.split()[2]

    def _readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        # The worker prints one line when ready; a dead worker closes stdout (empty line).
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return ""
        return self.proc.stdout.readline()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> float:
        """SIGKILL (if still running) and reap it; returns when it was killed."""
        at = time.time()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.wait(10)
        return at

    def wait(self, timeout: float) -> int:
        """Reap the process (a zombie still looks alive to ``os.kill(pid, 0)``)."""
        code = self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


# -- the PostgreSQL server ---------------------------------------------------------------------
def _ctl(*args: str) -> None:
    tool = shutil.which("pg_ctlcluster")
    if tool is None:
        raise AssertionError("pg_ctlcluster is not installed: these tests restart the server")
    subprocess.run(
        [tool, "--skip-systemctl-redirect", PG_VERSION, PG_CLUSTER, *args],
        check=True,
        capture_output=True,
        timeout=120,
    )


def pg_ready() -> bool:
    out = subprocess.run(["pg_isready", "-h", PG_HOST, "-t", "2"], capture_output=True)
    return out.returncode == 0


def stop_postgres() -> float:
    """Crash-stop the server: ``pg_ctl -m immediate`` (no shutdown checkpoint). Returns when."""
    at = time.time()
    _ctl("stop", "-m", "immediate")
    return at


def start_postgres() -> float:
    """Start the server and wait until it answers; returns when it did.

    ``recovery_init_sync_method=syncfs`` only changes how the data directory is flushed
    before crash recovery (one syncfs instead of an fsync per file): recovery itself is
    the normal WAL replay, a few seconds faster to start.
    """
    if not pg_ready():
        with contextlib.suppress(subprocess.CalledProcessError):
            _ctl("start", "--", "-o", "-c recovery_init_sync_method=syncfs")
    wait_until(pg_ready, 60, "PostgreSQL to accept connections")
    return time.time()


@contextlib.contextmanager
def server_restored() -> Iterator[None]:
    """Whatever happens inside, the server is up again afterwards."""
    try:
        yield
    finally:
        start_postgres()


def restart_postgres(down_for: float = 1.0) -> tuple[float, float]:
    """Crash-stop the server, keep it down ``down_for`` seconds, start it: (stopped, ready)."""
    with server_restored():
        stopped = stop_postgres()
        time.sleep(down_for)
    return stopped, time.time()


# -- sockets of a process, to find its backends in pg_stat_activity ---------------------------
def local_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets process ``pid`` holds open (Linux /proc)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
