"""Browser tests: Debian's chromium driven by Playwright, against ``spokehub serve`` in a
subprocess with a worker. They skip when chromium is absent, unless ``CI`` is set: then they
fail, so a green CI run cannot hide untested pages."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from spokehub import Client, Settings
from spokehub.types import RunStatus
from tests.browser.live_server import SECRET, Served, make_tokens, wait_until_serving

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing and CI is set: apt-get install -y chromium")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); CI would fail here")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_command(port: int) -> list[str]:
    spokehub = str(Path(sys.executable).parent / "spokehub")
    app = str(ROOT / "tests" / "browser" / "dash_app.py")
    return [spokehub, "serve", "--app", app, "--worker", "--port", str(port)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    _require_chromium()
    db_url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'dash.db'}"
    with Client(settings=Settings(database_url=db_url)) as setup:
        tokens = make_tokens(setup)
    port = _free_port()
    slo = tmp_path_factory.getbasetemp() / "slo.toml"
    slo.write_text(
        "[slo.dash_order]\nerror_rate = 0.05\nretry_rate = 0.5\n"
        "[slo.dash_wait]\np50_seconds = 1\np95_seconds = 2\n"
    )
    env = dict(
        os.environ,
        SPOKEHUB_DATABASE_URL=db_url,
        SPOKEHUB_SERVER_SECRET=SECRET.decode(),
        SPOKEHUB_SERVER_WORKER="1",
        SPOKEHUB_SERVER_PORT=str(port),
        SPOKEHUB_POLL_INTERVAL="0.05",
        PYTHONPATH=str(ROOT),
        SPOKEHUB_SLO_FILE=str(slo),
    )
    log = (tmp_path_factory.getbasetemp() / "server.log").open("w")
    proc = subprocess.Popen(_serve_command(port), cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, url, log.name)
        yield Served(url, tokens, db_url)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser(server: Served) -> Iterator[object]:
    """Chromium; it starts after the server, whose setup needs no running event loop, and
    stops with the module: Playwright's loop would break the sync calls of later tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


class OffLoop:
    """Runs spokehub's sync client calls on a thread of their own.

    Playwright's sync API keeps an event loop running on the test's thread, and spokehub's
    sync methods refuse to run under a running loop (they would block it).
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="starter")

    def __call__(self, fn: Callable[[Client], T]) -> T:
        return self.pool.submit(fn, self.client).result(timeout=30)

    def wait_for(self, run_id: str, status: RunStatus) -> None:
        deadline = time.monotonic() + 10
        while self(lambda c: c.get_run(run_id).status) is not status:
            assert time.monotonic() < deadline, f"run {run_id} never became {status}"
            time.sleep(0.02)


@pytest.fixture
def starter(server: Served) -> Iterator[OffLoop]:
    """Starts and steers runs in the server's database, as another process would."""
    settings = Settings(database_url=server.db_url, poll_interval=0.02)
    off = OffLoop(Client(settings=settings))
    try:
        yield off
    finally:
        off(lambda c: c.close())
        off.pool.shutdown()


@pytest.fixture
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
