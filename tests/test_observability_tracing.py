"""Traces: one trace per run across activations, workers and HTTP calls (real SDK, real store)."""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from spokehub import Client, RetryPolicy, Settings, call, sleep, step, wait_for_signal, workflow
from spokehub.observability import Observability, inject_headers, request_span, traceparent_hooks
from spokehub.observability.runs import RunDirectory, RunInfo, derived_carrier
from spokehub.testing import FakeClock, run_until_idle

# -- workflows --------------------------------------------------------------------------------


@step
async def obs_tr_add(x: int) -> int:
    return x + 1


@workflow
async def obs_tr_resume(x: int) -> int:
    a = await obs_tr_add(x)
    await sleep(60)
    got = await wait_for_signal("go")
    return await obs_tr_add(a + int(str(got)))


FLAKY: dict[str, int] = {}


@step(retry=RetryPolicy(max_attempts=3, initial_delay=1, jitter=0))
async def obs_tr_flaky(key: str) -> str:
    FLAKY[key] = FLAKY.get(key, 0) + 1
    if FLAKY[key] < 3:
        raise ConnectionError(f"try {FLAKY[key]} refused")
    return "ok"


@workflow
async def obs_tr_retry(key: str) -> str:
    return await obs_tr_flaky(key)


@step
async def obs_tr_call_async(url: str) -> str:
    async with httpx.AsyncClient(event_hooks=traceparent_hooks()) as http:
        return (await http.get(url)).text


@step
def obs_tr_call_sync(url: str) -> str:
    request = urllib.request.Request(url, headers=inject_headers({}))
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(response.read().decode())


@step
def obs_tr_call_httpx_sync(url: str) -> str:
    with httpx.Client(event_hooks=traceparent_hooks(sync=True)) as http:
        return http.get(url).text


@workflow
async def obs_tr_http(url: str) -> list[str]:
    return [
        await obs_tr_call_async(url),
        await call(obs_tr_call_sync, url),
        await call(obs_tr_call_httpx_sync, url),
    ]


@workflow
async def obs_tr_child(x: int) -> int:
    return await obs_tr_add(x)


@workflow
async def obs_tr_parent(x: int) -> int:
    return await obs_tr_child(x) + 1


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def provider_for(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def instrumented(
    db: Path, exporter: InMemorySpanExporter, clock: FakeClock | None = None
) -> tuple[Client, Observability]:
    """A client as another process would have it: its own provider, nothing cached."""
    settings = Settings(database_url=f"sqlite:///{db}")
    client = Client(settings=settings, clock=clock or FakeClock())
    obs = Observability(tracer_provider=provider_for(exporter))
    obs.instrument(client)
    return client, obs


def trace_hex(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


def span_hex(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.span_id:016x}"


def parent_hex(span: ReadableSpan) -> str | None:
    return None if span.parent is None else f"{span.parent.span_id:016x}"


def named(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]


def recorded_trace(client: Client, run_id: str) -> str:
    first = client.events(run_id)[0]
    return str(first.data["trace"]["traceparent"]).split("-")[1]


# -- tests ------------------------------------------------------------------------------------


def test_one_trace_across_unloads_and_two_clients(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    db, clock = tmp_path / "obs.db", FakeClock()  # one wall clock for both "processes"
    first, _ = instrumented(db, exporter, clock)
    with first:
        handle = first.start(obs_tr_resume, 1)
        assert run_until_idle(first) >= 2  # unloaded at the sleep, resumed, waits for "go"
        assert handle.status().value == "waiting"
    second, _ = instrumented(
        db, exporter, clock
    )  # another "process": reads the trace from the ledger
    with second:
        second.send_signal(handle.id, "go", 5)
        run_until_idle(second)
        assert second.handle(handle.id).result() == 8
        trace_id = recorded_trace(second, handle.id)

    spans = exporter.get_finished_spans()
    assert {trace_hex(s) for s in spans} == {trace_id}
    (start,) = named(exporter, "spokehub.start obs_tr_resume")
    steps = named(exporter, "spokehub.step obs_tr_add")
    assert [s.attributes["spokehub.step.seq"] for s in steps] == [1, 4]  # type: ignore[index]
    assert {parent_hex(s) for s in steps} == {span_hex(start)}
    assert all(s.attributes["spokehub.run_id"] == handle.id for s in steps)  # type: ignore[index]
    (run,) = named(exporter, "spokehub.run obs_tr_resume")
    assert parent_hex(run) == span_hex(start)
    assert run.attributes["spokehub.run.status"] == "completed"  # type: ignore[index]
    assert run.start_time is not None
    assert run.end_time is not None
    assert (run.end_time - run.start_time) / 1e9 >= 60  # the durable sleep is inside the run


def test_a_retried_step_has_one_span_per_attempt(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    client, _ = instrumented(tmp_path / "obs.db", exporter)
    with client:
        handle = client.start(obs_tr_retry, "retry-spans")
        run_until_idle(client)
        assert handle.result() == "ok"
        trace_id = recorded_trace(client, handle.id)
    attempts = named(exporter, "spokehub.step obs_tr_flaky")
    assert [s.attributes["spokehub.step.attempt"] for s in attempts] == [1, 2, 3]  # type: ignore[index]
    outcomes = [s.attributes["spokehub.step.outcome"] for s in attempts]  # type: ignore[index]
    assert outcomes == ["error", "error", "ok"]
    assert [s.status.status_code for s in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    failed = attempts[0]
    assert failed.attributes["error.type"] == "ConnectionError"  # type: ignore[index]
    assert [e.name for e in failed.events] == ["exception"]
    assert "try 1 refused" in str(failed.status.description)
    assert {trace_hex(s) for s in attempts} == {trace_id}


def test_a_run_started_inside_a_request_joins_the_callers_trace(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = {"traceparent": f"00-{caller_trace}-{caller_span}-01"}
    client, obs = instrumented(tmp_path / "obs.db", exporter)
    with client:
        with request_span("POST /runs", headers, tracer_provider=obs.tracing.tracer_provider):
            handle = client.start(obs_tr_add_flow, 1)
        run_until_idle(client)
        assert handle.result() == 2
        assert recorded_trace(client, handle.id) == caller_trace
    (server,) = named(exporter, "POST /runs")
    assert parent_hex(server) == caller_span
    (start,) = named(exporter, "spokehub.start")
    assert parent_hex(start) == span_hex(server)
    assert {trace_hex(s) for s in exporter.get_finished_spans()} == {caller_trace}


@workflow
async def obs_tr_add_flow(x: int) -> int:
    return await obs_tr_add(x)


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str | None]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("traceparent"))
        body = b"pong"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ping", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_steps_send_traceparent_of_their_span(
    tmp_path: Path, exporter: InMemorySpanExporter, loopback: tuple[str, list[str | None]]
) -> None:
    url, seen = loopback
    client, _ = instrumented(tmp_path / "obs.db", exporter)
    with client:
        handle = client.start(obs_tr_http, url)
        run_until_idle(client)
        assert handle.result() == ["pong", "pong", "pong"]
        trace_id = recorded_trace(client, handle.id)
    spans = [
        named(exporter, f"spokehub.step {n}")[0]
        for n in ("obs_tr_call_async", "obs_tr_call_sync", "obs_tr_call_httpx_sync")
    ]
    # version-trace-parent; flags: sampled (the SDK may also set the random-trace-id bit)
    assert [h and h.rsplit("-", 1)[0] for h in seen] == [
        f"00-{trace_id}-{span_hex(s)}" for s in spans
    ]
    assert all(h and int(h.rsplit("-", 1)[1], 16) & 1 for h in seen)


def test_runs_without_a_recorded_trace_still_get_one(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    db = tmp_path / "obs.db"
    with Client(settings=Settings(database_url=f"sqlite:///{db}"), clock=FakeClock()) as plain:
        handle = plain.start(obs_tr_parent, 1)  # started by a client without tracing
        assert "trace" not in plain.events(handle.id)[0].data
    worker_side, _ = instrumented(db, exporter)
    with worker_side:
        run_until_idle(worker_side)
        assert worker_side.handle(handle.id).result() == 3
    derived = derived_carrier(handle.id)["traceparent"].split("-")[1]
    (child_step,) = named(exporter, "spokehub.step obs_tr_add")
    assert child_step.attributes["spokehub.run_id"] == f"{handle.id}.1"  # type: ignore[index]
    assert {trace_hex(s) for s in exporter.get_finished_spans()} == {derived}


def test_interceptors_without_a_store_fall_back_and_say_why(
    tmp_path: Path, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'obs.db'}")
    with Client(settings=settings, clock=FakeClock()) as plain:
        run_id = plain.start(obs_tr_add_flow, 1).id
    obs = Observability(tracer_provider=provider_for(exporter))
    with Client(settings=settings, clock=FakeClock(), interceptors=obs.interceptors) as client:
        run_until_idle(client)  # obs.instrument(client) was forgotten
        assert client.handle(run_id).result() == 2
    (attempt,) = named(exporter, "spokehub.step obs_tr_add")
    assert trace_hex(attempt) == derived_carrier(run_id)["traceparent"].split("-")[1]
    assert "call obs.instrument(client)" in caplog.text


def test_the_run_directory_forgets_the_least_recently_used() -> None:
    runs = RunDirectory(size=2)
    for run_id in ("r0", "r1", "r2"):
        runs.remember(RunInfo(run_id, derived_carrier(run_id), 1.0, recorded=False))
    assert asyncio.run(runs.resolve("r2")).started_at == 1.0  # still known
    assert asyncio.run(runs.resolve("r0")).started_at is None  # forgotten: read again (no store)
