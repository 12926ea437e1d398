"""The run page's Gantt SVG, drawn from timelines of real runs (SQLite, a worker, a fake clock)."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest

from spokehub import Client, ops
from spokehub.engine.timeline import build_timeline
from spokehub.server.gantt import LABEL_WIDTH, PAD_RIGHT, gantt_svg, nice_ticks
from spokehub.testing import FakeClock, run_until_idle
from tests.browser.dash_app import HOSTILE, dash_nasty, dash_order, dash_review, dash_wait

NS = "{http://www.w3.org/2000/svg}"
WIDTH = 900


def draw(client: Client, run_id: str, width: int = WIDTH) -> ET.Element:
    view = asyncio.run(ops.show_run(client, run_id))
    svg = gantt_svg(view.timeline, view.events, now=view.now, width=width)
    return ET.fromstring(svg)


def rows(svg: ET.Element) -> list[ET.Element]:
    return [g for g in svg.iter(f"{NS}g") if "row" in g.get("class", "").split()]


def bars(row: ET.Element, cls: str | None = None) -> list[ET.Element]:
    found = [r for r in row.iter(f"{NS}rect") if "bar" in r.get("class", "").split()]
    return [r for r in found if cls is None or cls in r.get("class", "").split()]


def label(row: ET.Element) -> str:
    text = row.find(f"{NS}text")
    assert text is not None
    return text.text or ""


def span_x(rect: ET.Element) -> tuple[float, float]:
    left = float(rect.get("x", "0"))
    return left, left + float(rect.get("width", "0"))


def test_retried_step_has_a_failed_attempt_a_backoff_and_a_successful_one(client: Client) -> None:
    handle = client.start(dash_order, "cup", flaky=True)
    run_until_idle(client)
    assert handle.result() == "res-cup/ship-cup"
    svg = draw(client, handle.id)
    reserve, ship = rows(svg)
    assert label(reserve) == "1. dash_reserve"
    assert label(ship) == "2. dash_ship"
    assert len(bars(reserve, "failed")) == 1
    assert len(bars(reserve, "backoff")) == 1
    assert len(bars(reserve, "ok")) == 1
    assert [b.get("class") for b in bars(ship)] == ["bar ok"]
    failed, backoff, ok = bars(reserve)
    assert span_x(failed)[0] <= span_x(backoff)[0] <= span_x(ok)[0]  # in time order
    titles = [b.findtext(f"{NS}title") for b in bars(reserve)]
    assert "attempt 1 failed" in str(titles[0])
    assert "TimeoutError: inventory timed out" in str(titles[0])
    assert "attempt 2 ok" in str(titles[2])
    markers = {m.get("class") for m in svg.iter(f"{NS}line") if "marker" in m.get("class", "")}
    assert markers == {"marker start", "marker end"}  # finished: no "now" marker


def test_waits_are_placed_on_the_time_axis(client: Client, clock: FakeClock) -> None:
    handle = client.start(dash_wait, 60.0)
    run_until_idle(client)  # the fake clock jumps over the 60 s sleep, then the run waits
    clock.advance(30)
    running = draw(client, handle.id)
    timer, signal = rows(running)
    assert (label(timer), label(signal)) == ("1. sleep", "2. signal go")
    [done] = bars(timer, "wait-done")
    [waiting] = bars(signal, "wait")
    assert "open" in str(waiting.get("class"))
    # 90 s on the axis: the sleep covers the first two thirds, the open wait reaches to now.
    plot = WIDTH - LABEL_WIDTH - PAD_RIGHT
    left, right = span_x(done)
    assert left == pytest.approx(LABEL_WIDTH, abs=0.2)
    assert right == pytest.approx(LABEL_WIDTH + plot * 60 / 90, abs=0.2)
    assert span_x(waiting)[1] == pytest.approx(WIDTH - PAD_RIGHT, abs=0.2)
    markers = [m for m in running.iter(f"{NS}line") if m.get("class") == "marker now"]
    assert len(markers) == 1
    ticks = [t.text for t in running.iter(f"{NS}text") if t.get("class") == "tick-label"]
    assert ticks[0] == "0"
    assert "1m00s" in ticks
    client.send_signal(handle.id, "go", "fast")
    run_until_idle(client)
    finished = draw(client, handle.id)
    assert [b.get("class") for r in rows(finished) for b in bars(r)] == [
        "bar wait-done",
        "bar wait-done",
    ]


def test_failed_run_shows_failed_attempts_and_the_compensation(client: Client) -> None:
    handle = client.start(dash_order, "pan", carrier_down=True)
    run_until_idle(client)
    svg = draw(client, handle.id)
    reserve, ship, undo = rows(svg)
    assert "compensated" in str(reserve.get("class"))
    assert len(bars(ship, "failed")) == 3  # three attempts, all failed
    assert len(bars(ship, "backoff")) == 2  # backoff between them, none after the last
    assert label(undo) == "undo dash_reserve"
    [comp] = bars(undo, "compensation")
    assert comp.get("fill") == "#7048e8"


def test_approval_wait_and_rejection(client: Client) -> None:
    handle = client.start(dash_review, "memo")
    run_until_idle(client)
    [row] = rows(draw(client, handle.id))
    assert label(row) == "1. approval editor"
    assert len(bars(row, "wait")) == 1
    client.reject(handle.id, comment="no", by="ann")
    run_until_idle(client)
    [row] = rows(draw(client, handle.id))
    [bar] = bars(row, "wait-failed")
    assert "rejected" in str(bar.findtext(f"{NS}title"))


def test_hostile_names_are_escaped(client: Client) -> None:
    handle = client.start(dash_nasty)
    run_until_idle(client)
    view = asyncio.run(ops.show_run(client, handle.id))
    text = gantt_svg(view.timeline, view.events, now=view.now)
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    [row] = rows(ET.fromstring(text))  # still well-formed XML
    assert HOSTILE[:20] in label(row)
    assert label(row).endswith("…")  # long labels are cut, the tooltip keeps them whole
    assert HOSTILE in str(row.find(f"{NS}text/{NS}title").text)  # type: ignore[union-attr]


def test_control_characters_are_dropped_and_empty_timelines_draw() -> None:
    empty = ET.fromstring(gantt_svg(build_timeline([]), [], now=5.0, width=400))
    assert empty.get("width") == "400"
    assert rows(empty) == []
    assert "no calls yet" in "".join(empty.itertext())


def test_two_hundred_rows_stay_one_row_high_each(client: Client) -> None:
    handles = [client.start(dash_order, f"i{i}") for i in range(2)]
    run_until_idle(client)
    view = asyncio.run(ops.show_run(client, handles[0].id))
    many = tuple(view.timeline.calls) * 100
    timeline = type(view.timeline)(
        calls=many,
        run_rows=(),
        started_at=view.timeline.started_at,
        ended_at=view.timeline.ended_at,
        status=view.timeline.status,
    )
    svg = ET.fromstring(gantt_svg(timeline, view.events, now=view.now))
    assert len(rows(svg)) == 200
    assert int(svg.get("height", "0")) < 200 * 30


@pytest.mark.parametrize(
    ("span", "step"),
    [
        (0.05, 0.01),
        (1.0, 0.2),
        (7.0, 1.0),
        (90.0, 15.0),
        (600.0, 120.0),
        (3600.0, 600.0),
        (86400.0, 21600.0),
    ],
)
def test_ticks_fall_on_round_steps(span: float, step: float) -> None:
    ticks = nice_ticks(span)
    assert ticks[0] == 0.0
    assert ticks[1] == pytest.approx(step)
    assert ticks[-1] <= span
    assert 2 <= len(ticks) <= 9
