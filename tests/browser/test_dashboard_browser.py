"""The dashboard in a real browser: log in, watch runs change live, open a timeline, approve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from spokehub.types import RunStatus
from tests.browser.conftest import OffLoop
from tests.browser.dash_app import dash_order, dash_review, dash_wait
from tests.browser.live_server import Served

WIDTH, HEIGHT = 1280, 900


# Console lines in which Chromium reports what the Content-Security-Policy refused, per page.
CSP_VIOLATIONS: dict[int, list[str]] = {}


def close(page: Page) -> None:
    """Close the page's context, after checking the pages loaded nothing the CSP refused."""
    violations = CSP_VIOLATIONS.pop(id(page), [])
    page.context.close()
    assert violations == [], violations


def open_page(browser: Any, server: Served, role: str = "admin") -> Page:
    """A fresh browser context, logged in through the login form."""
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page: Page = context.new_page()
    seen = CSP_VIOLATIONS[id(page)] = []
    page.on(
        "console",
        lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.goto(f"{server.url}/ui/runs")
    expect(page).to_have_url(f"{server.url}/ui/login?next=/ui/runs")
    page.fill("#token", server.tokens[role])
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server.url}/ui/runs")
    return page


def test_runs_list_updates_live_and_the_timeline_opens(
    browser: Any, server: Served, starter: OffLoop, shots: Path
) -> None:
    retried = starter(lambda c: c.start(dash_order, "mug", flaky=True))
    failed = starter(lambda c: c.start(dash_order, "vase", carrier_down=True))
    handle = starter(lambda c: c.start(dash_wait, 0.3))  # sleeps, then waits for "go"
    starter.wait_for(retried.id, RunStatus.COMPLETED)
    starter.wait_for(failed.id, RunStatus.FAILED)
    starter.wait_for(handle.id, RunStatus.WAITING)
    page = open_page(browser, server)
    cell = page.locator(f'tr[data-run="{handle.id}"] .status-cell')
    expect(cell).to_have_text("waiting")
    page.evaluate("window.__notReloaded = true")
    page.screenshot(path=str(shots / "runs-list.png"), full_page=True)

    starter(lambda c: c.send_signal(handle.id, "go", "live"))
    expect(cell).to_have_text("completed", timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True  # changed in place, no reload

    page.click(f'a[href="/ui/runs/{failed.id}"]')
    expect(page.locator("#run-status")).to_have_text("failed")
    gantt = page.locator("svg.gantt")
    expect(gantt).to_be_visible()
    assert gantt.locator("g.row").count() == 3  # reserve, ship, undo reserve
    assert gantt.locator("rect.bar.failed").count() == 3
    assert gantt.locator("rect.bar.compensation").count() == 1
    page.screenshot(path=str(shots / "run-failed-saga.png"), full_page=True)
    page.goto(f"{server.url}/ui/runs/{retried.id}")
    expect(page.locator("svg.gantt rect.bar.backoff")).to_have_count(1)
    page.screenshot(path=str(shots / "run-retried.png"), full_page=True)
    close(page)


def test_watch_a_run_finish_on_its_own_page(
    browser: Any, server: Served, starter: OffLoop, shots: Path
) -> None:
    handle = starter(lambda c: c.start(dash_wait, 0.0))
    starter.wait_for(handle.id, RunStatus.WAITING)
    page = open_page(browser, server, "viewer")
    page.goto(f"{server.url}/ui/runs/{handle.id}")
    expect(page.locator("#run-status")).to_have_text("waiting")
    expect(page.locator("svg.gantt line.marker.now")).to_have_count(1)
    page.screenshot(path=str(shots / "run-waiting.png"), full_page=True)
    starter(lambda c: c.send_signal(handle.id, "go", 7))
    expect(page.locator("#run-status")).to_have_text("completed", timeout=10_000)
    expect(page.locator("svg.gantt line.marker.end")).to_have_count(1)
    close(page)


def test_approve_from_the_inbox(
    browser: Any, server: Served, starter: OffLoop, shots: Path
) -> None:
    handle = starter(lambda c: c.start(dash_review, "launch-plan"))
    starter.wait_for(handle.id, RunStatus.WAITING)
    page = open_page(browser, server, "approver")
    page.click("nav >> text=Approvals")
    row = page.locator(f'tr[data-run="{handle.id}"]')
    expect(row).to_contain_text("editor")
    expect(row).to_contain_text("ann, bo")
    page.screenshot(path=str(shots / "inbox.png"), full_page=True)
    row.locator("input[name=comment]").fill("looks good")
    row.locator("button[value=approve]").click()
    expect(page).to_have_url(f"{server.url}/ui/inbox")
    expect(page.locator(f'tr[data-run="{handle.id}"]')).to_have_count(0)
    page.goto(f"{server.url}/ui/runs/{handle.id}")
    expect(page.locator("#run-status")).to_have_text("completed", timeout=10_000)
    expect(page.locator("table.calls")).to_contain_text("by approver-user: looks good")
    assert starter(lambda c: c.handle(handle.id).result(timeout=5)) == (
        "launch-plan approved by approver-user"
    )
    page.screenshot(path=str(shots / "run-approved.png"), full_page=True)
    for name in ("queues", "slo"):
        page.goto(f"{server.url}/ui/{name}")
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    close(page)
