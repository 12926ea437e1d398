"""Processes for the PostgreSQL failure tests.

``WorkerProcess`` runs ``pg_chaos_worker.py``. The tests that crash-restart the server do it
to a throwaway cluster of their own (``tests/pg_cluster.py``), never to the machine's server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from tests import pg_chaos_ledger

HERE = Path(__file__).resolve().parent


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
        expect_ready: bool = False,
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
        if command is None or expect_ready:  # a command that runs pg_chaos_worker.py says so
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
