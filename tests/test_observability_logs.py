"""Logs: lines written while runs execute carry run, step and trace; secrets never appear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from spokehub import Client, RetryPolicy, Settings, step, wait_for_signal, workflow
from spokehub.observability import Observability, configure_logging
from spokehub.observability import runs as runs_module
from spokehub.observability.logs import redact
from spokehub.testing import FakeClock, run_until_idle

app_log = logging.getLogger("obs_lg.app")
SECRET = "sk-live-0123456789"


@step(retry=RetryPolicy(max_attempts=1))
async def obs_lg_charge(order: str) -> str:
    app_log.info(
        "charging %s with header Authorization: Bearer %s",
        order,
        SECRET,
        extra={"api_key": SECRET, "order": {"id": order, "card": {"password": SECRET}}},
    )
    try:
        raise RuntimeError(f"gateway said: bearer {SECRET}")
    except RuntimeError:
        app_log.exception("gateway failed")
    return "charged"


@workflow
async def obs_lg_flow(order: str) -> str:
    app_log.info("workflow begins", extra={"client_secret": SECRET})
    return await obs_lg_charge(order)


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_logged(tmp_path: Path, fmt: str) -> tuple[str, str, str]:
    """Run one workflow with logs configured; return (output, run id, recorded trace id)."""
    out = io.StringIO()
    configure_logging(fmt=fmt, level="INFO", stream=out)  # type: ignore[arg-type]
    client = Client(
        settings=Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}"), clock=FakeClock()
    )
    Observability(tracer_provider=TracerProvider()).instrument(client)
    with client:
        handle = client.start(obs_lg_flow, "o-7")
        run_until_idle(client)
        assert handle.result() == "charged"
        trace = client.events(handle.id)[0].data["trace"]["traceparent"].split("-")[1]
    return out.getvalue(), handle.id, trace


@pytest.mark.usefixtures("restore_root")
def test_json_lines_carry_run_and_trace_and_no_secret(tmp_path: Path) -> None:
    output, run_id, trace_id = run_logged(tmp_path, "json")
    assert SECRET not in output
    lines = [json.loads(line) for line in output.splitlines()]
    mine: dict[str, dict[str, Any]] = {
        line["message"].split(" ")[0]: line for line in lines if line["logger"] == "obs_lg.app"
    }
    assert set(mine) == {"workflow", "charging", "gateway"}
    for line in mine.values():
        assert line["run_id"] == run_id
        assert line["trace_id"] == trace_id
        assert line["level"] in {"INFO", "ERROR"}
        assert line["ts"].endswith("+00:00")
    charging = mine["charging"]
    assert charging["step"] == "obs_lg_charge"
    assert charging["seq"] == 1
    assert charging["attempt"] == 1
    assert len(charging["span_id"]) == 16
    assert charging["api_key"] == "[redacted]"
    assert charging["order"] == {"id": "o-7", "card": {"password": "[redacted]"}}
    assert "Bearer [redacted]" in charging["message"]
    assert mine["workflow"]["client_secret"] == "[redacted]"
    assert "span_id" not in mine["workflow"]  # workflow code runs outside any span
    assert "RuntimeError: gateway said: bearer [redacted]" in mine["gateway"]["exception"]


@pytest.mark.usefixtures("restore_root")
def test_text_lines_have_the_same_fields(tmp_path: Path) -> None:
    output, run_id, trace_id = run_logged(tmp_path, "text")
    assert SECRET not in output
    (charging,) = [line for line in output.splitlines() if "obs_lg.app: charging" in line]
    assert f"run_id={run_id}" in charging
    assert f"trace_id={trace_id}" in charging
    assert "step=obs_lg_charge" in charging
    assert "api_key=[redacted]" in charging
    assert " INFO obs_lg.app: " in charging


@pytest.mark.usefixtures("restore_root")
def test_configuring_twice_replaces_the_handler() -> None:
    first = configure_logging(fmt="json")
    second = configure_logging(fmt="text", level=logging.WARNING)
    root = logging.getLogger()
    assert second in root.handlers
    assert first not in root.handlers
    assert root.level == logging.WARNING
    with pytest.raises(ValueError, match="json"):
        configure_logging(fmt="xml")  # type: ignore[arg-type]


def test_redact_walks_nested_values() -> None:
    data = {"headers": [{"Authorization": "Basic x"}], "ok": ("a", 1), "SessionToken": "t"}
    assert redact(data) == {
        "headers": [{"Authorization": "[redacted]"}],
        "ok": ("a", 1),
        "SessionToken": "[redacted]",
    }


def test_redact_finds_credentials_in_text() -> None:
    text = "login password=hunter2 then Authorization: Basic dXNlcjpwdw== ok"
    assert redact(text) == "login password=[redacted] then Authorization: Basic [redacted] ok"


@pytest.mark.usefixtures("restore_root")
def test_a_bad_format_does_not_break_the_caller() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    raised = logging.raiseExceptions
    logging.raiseExceptions = False  # what production logging does with a broken record
    try:
        app_log.info("%d apples", "many")  # no exception reaches the caller
    finally:
        logging.raiseExceptions = raised
    assert out.getvalue() == ""


@workflow
async def obs_lg_resumed(order: str) -> str:
    got = await wait_for_signal("go")
    app_log.info("resumed with %s", got)
    return f"{order}:{got}"


@pytest.mark.usefixtures("restore_root")
def test_a_resumed_activation_logs_its_trace_without_a_store_read(tmp_path: Path) -> None:
    """A worker that did not start the run (a fresh process: empty caches) learns the trace
    from the ledger it claimed, so workflow code logs it before any step runs."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Client(settings=Settings(database_url=url), clock=FakeClock()) as starter:
        Observability(tracer_provider=TracerProvider()).instrument(starter)
        handle = starter.start(obs_lg_resumed, "o-9")
        run_until_idle(starter)
        starter.send_signal(handle.id, "go", "yes")
        trace = starter.events(handle.id)[0].data["trace"]["traceparent"].split("-")[1]
    runs_module._TRACE_IDS.clear()  # what a new process knows
    out = io.StringIO()
    configure_logging(fmt="json", level="INFO", stream=out)  # type: ignore[arg-type]
    with Client(settings=Settings(database_url=url), clock=FakeClock()) as resumer:
        obs = Observability(tracer_provider=TracerProvider())
        obs.instrument(resumer)
        obs.runs.store = None  # a store read would fail loudly: the ledger must suffice
        run_until_idle(resumer)
        assert resumer.get_run(handle.id).result == "o-9:yes"
    (line,) = [json.loads(x) for x in out.getvalue().splitlines() if "resumed with" in x]
    assert (line["run_id"], line["trace_id"]) == (handle.id, trace)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_uvicorn_color_message_never_reaches_the_logs(restore_root: None, fmt: str) -> None:
    """uvicorn logs ``extra={"color_message": ...}`` with terminal escape codes (issue 8 #14)."""
    out = io.StringIO()
    configure_logging(fmt=fmt, level="INFO", stream=out)  # type: ignore[arg-type]
    # uvicorn's own call, on a logger of this test (other tests start uvicorn, which sets up
    # its loggers; the real server is checked in tests/server/test_api_cli.py).
    logging.getLogger("obs_lg.uvicorn").info(
        "Started server process [%d]",
        4242,
        extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"},
    )
    text = out.getvalue()
    assert "Started server process [4242]" in text
    assert "color_message" not in text
    assert "\x1b" not in text
    assert "\\u001b" not in text


def test_token_counts_are_not_mistaken_for_credentials() -> None:
    from spokehub.engine.redaction import redact

    shown = redact({"usage": {"prompt_tokens": 12, "max_tokens": 5}, "access_token": "s3cr3t"})
    assert shown == {"usage": {"prompt_tokens": 12, "max_tokens": 5}, "access_token": "[redacted]"}
