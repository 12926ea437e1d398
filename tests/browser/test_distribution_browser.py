"""The distribution page in a real browser, against ``spokehub serve`` on a database where the
demo's rollout really ran: the patterns x targets matrix, a hand edit that a drift check finds
(the page shows the diff without a reload), and a rollout in another thread drawn live wave by
wave, up to its manual gate and past it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from spokehub import Client, Settings
from spokehub.distribution import service
from spokehub.distribution.demo.scenario import DIST
from tests.browser.conftest import ROOT, _free_port, _require_chromium
from tests.browser.live_server import SECRET, Served, make_tokens, wait_until_serving
from tests.browser.test_dashboard_browser import close, open_page
from tests.dist_support import demo_hub, real_client, release, rollout

PAGE = f"/ui/distributions/{DIST}"
LIVE = 15_000  # ms: a drift check or a wave, then the 0.5 s poll and the fragment fetch


def _off_loop(fn: Any) -> Any:
    """Run ``fn`` on a thread of its own: Playwright's sync API keeps a loop on this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(timeout=120)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The demo hub (CMS and webhook sink running) and a database where r1 rolled out."""
    _require_chromium()
    tmp = tmp_path_factory.mktemp("dist-browser")
    db_url = f"sqlite:///{tmp / 'dist.db'}"
    with demo_hub(tmp) as (folder, _, _):
        client = real_client(db_url)
        try:
            assert rollout(client, folder, "r1")["status"] == "Succeeded"
        finally:
            client.close()
        yield folder, db_url


@pytest.fixture(scope="module")
def server(hub: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``spokehub serve`` (no worker: rollouts run in the test, as the CLI runs them)."""
    _, db_url = hub
    with Client(settings=Settings(database_url=db_url)) as setup:
        tokens = make_tokens(setup)
    port = _free_port()
    env = dict(
        os.environ,
        SPOKEHUB_DATABASE_URL=db_url,
        SPOKEHUB_SERVER_SECRET=SECRET.decode(),
        SPOKEHUB_SERVER_PORT=str(port),
        PYTHONPATH=str(ROOT),
    )
    env.pop("SPOKEHUB_SERVER_WORKER", None)
    log_path = tmp_path_factory.getbasetemp() / "dist-server.log"
    command = [str(Path(sys.executable).parent / "spokehub"), "serve", "--port", str(port)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(proc, url, str(log_path))
            yield Served(url, tokens, db_url)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def cell(page: Page, pattern: str, target: str) -> Any:
    return page.locator(f'#matrix tr[data-pattern="{pattern}"] td[data-target="{target}"]')


def test_matrix_then_a_hand_edit_shows_up_live_with_its_diff(
    browser: Any, server: Served, hub: tuple[Path, str], shots: Path
) -> None:
    folder, db_url = hub
    page = open_page(browser, server)
    page.goto(server.url + PAGE)
    # Rows are the release's patterns; a cell is the state of that pattern's resources there.
    expect(cell(page, "ds.tokens.core", "docs")).to_have_attribute("data-state", "InSync")
    expect(cell(page, "ds.tokens.core", "web")).to_have_attribute("data-state", "InSync")
    expect(cell(page, "ds.tokens.core", "cms-prod")).to_have_attribute("data-state", "InSync")
    expect(cell(page, "api.orders", "docs")).to_have_attribute("data-state", "InSync")
    expect(cell(page, "api.orders", "web")).to_have_attribute("data-state", "Not delivered")
    expect(cell(page, "(release)", "events")).to_have_attribute("data-state", "InSync")
    expect(cell(page, "ds.tokens.core", "events")).to_have_attribute("data-state", "Not delivered")
    expect(page.locator("#drift .empty")).to_have_text("No drift recorded.")
    expect(page.locator('#rollout li.wave[data-wave="canary"]')).to_have_attribute(
        "data-state", "Done"
    )
    page.screenshot(path=str(shots / "distribution-matrix.png"), full_page=True)
    page.evaluate("window.__notReloaded = true")

    docs = folder / "targets/docs-site/docs/tokens.md"
    android = folder / "targets/android/res/values/dimens.xml"
    originals = {docs: docs.read_bytes(), android: android.read_bytes()}
    docs.write_text(docs.read_text() + "| extra | row |\n")  # someone edits the docs site
    android.unlink()  # and someone deletes a file of the Android app

    def check() -> None:
        client = real_client(db_url)
        try:
            asyncio.run(service.drift(client, folder, DIST, heal=False))
        finally:
            client.close()

    try:
        _off_loop(check)
    finally:
        for path, data in originals.items():  # the next test rolls out over clean targets
            path.write_bytes(data)
    expect(cell(page, "ds.tokens.core", "docs")).to_have_attribute(
        "data-state", "Modified", timeout=LIVE
    )
    expect(cell(page, "ds.tokens.core", "android")).to_have_attribute("data-state", "Missing")
    expect(cell(page, "api.orders", "docs")).to_have_attribute("data-state", "InSync")
    entry = page.locator('#drift .drift-entry[data-target="docs"]')
    expect(entry.locator("pre.diff .add")).to_have_text("+| extra | row |")
    expect(entry).to_contain_text("docs/tokens.md")
    assert page.evaluate("window.__notReloaded") is True  # updated in place, no reload
    page.screenshot(path=str(shots / "distribution-drift.png"), full_page=True)
    close(page)


def test_a_rollout_in_another_thread_draws_its_waves_live(
    browser: Any, server: Served, hub: tuple[Path, str], shots: Path
) -> None:
    folder, db_url = hub
    release(folder, "r2", "1.0.1", accent=[0.0, 0.35, 0.75])
    page = open_page(browser, server)
    page.goto(f"{server.url}{PAGE}?release=r2")
    expect(page.locator("#rollout .empty")).to_contain_text("No rollout run of r2")
    page.evaluate("window.__notReloaded = true")
    gate_open = threading.Event()
    gates: list[str] = []
    outcome: dict[str, Any] = {}

    def roll() -> None:
        client = real_client(db_url)

        async def go() -> None:
            handle = await service.start_rollout(client, folder, DIST, "r2")

            async def gate(name: str, run: Any) -> bool:
                gates.append(name)
                return await asyncio.to_thread(gate_open.wait, 60)

            outcome["run"] = await service.drive(client, handle.id, gate)

        try:
            asyncio.run(go())
        finally:
            client.close()

    thread = threading.Thread(target=roll, name="rollout", daemon=True)
    thread.start()
    try:
        canary = page.locator('#rollout li.wave[data-wave="canary"]')
        broad = page.locator('#rollout li.wave[data-wave="broad"]')
        # The canary wave is applied and analysed; the broad wave is applied and waits on
        # its manual gate: the rollout is held there, so the page must show it.
        expect(broad.locator(".gate")).to_have_attribute("data-gate", "Waiting", timeout=LIVE)
        expect(canary).to_have_attribute("data-state", "Done")
        expect(canary.locator('.tbox[data-target="cms-staging"]')).to_have_attribute(
            "data-state", "Applied"
        )
        expect(canary.locator(".analysis")).to_contain_text("content-smoke/health@cms-staging")
        expect(canary.locator(".analysis .pill").first).to_have_text("Successful")
        expect(broad).to_have_attribute("data-state", "Progressing")
        expect(broad.locator('.tbox[data-target="web"]')).to_have_attribute("data-state", "Applied")
        expect(page.locator("#rollout-status")).to_have_text("Progressing")
        expect(cell(page, "ds.tokens.core", "web")).to_have_attribute("data-state", "InSync")
        page.screenshot(path=str(shots / "distribution-waves-gate.png"), full_page=True)
        assert gates == ["promote:broad"]
    finally:
        gate_open.set()
        thread.join(timeout=60)
    assert outcome["run"].result["status"] == "Succeeded"
    expect(page.locator("#rollout-status")).to_have_text("Succeeded", timeout=LIVE)
    expect(page.locator('#rollout li.wave[data-wave="broad"]')).to_have_attribute(
        "data-state", "Done"
    )
    expect(page.locator('#rollout li.wave[data-wave="broad"] .gate')).to_contain_text("by cli")
    assert page.evaluate("window.__notReloaded") is True
    page.screenshot(path=str(shots / "distribution-waves-done.png"), full_page=True)
    close(page)
