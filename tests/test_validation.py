"""Bad input at the Python and CLI doors (issue 8, defects 2-6): refused before anything is
stored, with the same error on SQLite and PostgreSQL; stored bad text is shown escaped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import spokehub as sh
from spokehub import Client, Settings, step, workflow
from spokehub.cli.app import app
from spokehub.testing import run_until_idle

SURROGATE = "\ud800"
NUL = "a\x00b"


@workflow
def va_echo(data: dict[str, Any]) -> dict[str, Any]:
    return data


@workflow
def va_typed(n: int) -> int:
    return n + 1


@step
def va_bad_text() -> list[str]:
    return [SURROGATE, NUL]


@workflow
def va_returns_bad_text() -> list[str]:
    return va_bad_text()


def _nothing_stored(client: Client) -> None:
    assert client.list_runs() == []


@pytest.mark.parametrize(
    "bad",
    [{"x": SURROGATE}, {SURROGATE: 1}, {"x": [1, {"y": NUL}]}, {"a\x00": 1}, {"x": "\udfff!"}],
)
def test_start_refuses_invalid_text_before_storing(client: Client, bad: dict[str, Any]) -> None:
    with pytest.raises(sh.InvalidInput, match="UTF-8") as caught:
        client.start(va_echo, bad)
    assert caught.value.code == "invalid_input"
    with pytest.raises(sh.InvalidInput):
        client.start_input(va_echo, {"data": bad})
    _nothing_stored(client)


@pytest.mark.parametrize(
    "run_id", ["", "   ", "\t", "a/b", "../x", "a\x01b", "-x", "a b", "x" * 256, NUL, SURROGATE]
)
def test_one_run_id_rule_everywhere(client: Client, run_id: str) -> None:
    with pytest.raises(sh.InvalidInput, match="run id"):
        client.start(va_typed.options(run_id=run_id), 1)
    with pytest.raises(sh.InvalidInput, match="run id"):
        client.start_input(va_typed, {"n": 1}, run_id=run_id)
    _nothing_stored(client)


def test_good_run_ids_pass() -> None:
    from spokehub.engine.validation import check_run_id

    for run_id in ["a", "order-42", "hook:deploy:msg_1", "x.1", "u@host", "A_b+c=d", "9" * 255]:
        assert check_run_id(run_id) == run_id


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_nul_and_surrogates_in_lookups_are_the_same_error_on_both_backends(
    client: Client, bad: str
) -> None:
    for call in (
        lambda: client.get_run(bad),
        lambda: client.events(bad),
        lambda: client.cancel(bad),
        lambda: client.list_runs(search=bad),
        lambda: client.list_runs(workflow=bad),
        lambda: client.send_signal(bad, "go"),
        lambda: client.approve(bad),
    ):
        with pytest.raises(sh.InvalidInput):
            call()


def test_signals_and_decisions_refuse_invalid_text(client: Client) -> None:
    handle = client.start(va_typed, 1)
    with pytest.raises(sh.InvalidInput, match="signal payload"):
        client.send_signal(handle.id, "go", {"x": SURROGATE})
    with pytest.raises(sh.InvalidInput, match="signal name"):
        client.send_signal(handle.id, NUL, 1)
    with pytest.raises(sh.InvalidInput, match="comment"):
        client.approve(handle.id, comment=NUL)
    with pytest.raises(sh.InvalidInput, match="comment"):
        client.reject(handle.id, comment=SURROGATE)
    with pytest.raises(sh.InvalidInput, match="by"):
        client.approve(handle.id, by=NUL)


def test_input_size_limit_points_at_references(db_url: str) -> None:
    settings = Settings(database_url=db_url, max_input_bytes=1000)
    with Client(settings=settings) as client:
        with pytest.raises(sh.InputTooLarge, match="reference") as caught:
            client.start(va_echo, {"blob": "x" * 2000})
        assert caught.value.code == "too_large"
        with pytest.raises(sh.InputTooLarge):
            client.start_input(va_echo, {"data": {"blob": "x" * 2000}})
        handle = client.start(va_echo, {"small": "x" * 10})
        with pytest.raises(sh.InputTooLarge):
            client.send_signal(handle.id, "go", "y" * 2000)
        assert [r.id for r in client.list_runs()] == [handle.id]
    assert Settings().max_input_bytes == 1024 * 1024
    assert Settings.from_env({"SPOKEHUB_MAX_INPUT_BYTES": "10"}).max_input_bytes == 10


def test_python_start_validates_types_at_start(client: Client) -> None:
    with pytest.raises(sh.SerializationError, match="argument 'n'"):
        client.start(va_typed, "not a number")  # type: ignore[arg-type]
    with pytest.raises(sh.SerializationError):
        client.run(va_typed, "x")  # type: ignore[arg-type]
    _nothing_stored(client)
    handle = client.start(va_typed, 1)
    run_until_idle(client)
    assert handle.result() == 2


def test_stored_bad_text_is_shown_escaped(client: Client) -> None:
    from spokehub import ops

    handle = client.start(va_returns_bad_text)
    run_until_idle(client)

    async def read() -> tuple[Any, Any]:
        listed = await ops.list_runs(client)
        view = await ops.show_run(client, handle.id)
        return listed, view

    import asyncio

    listed, view = asyncio.run(read())
    assert listed[0].result == ["\\ud800", "a\\u0000b"]
    json.dumps(view.to_dict()).encode("utf-8")  # the whole page can be written out
    assert view.run.result == ["\\ud800", "a\\u0000b"]


def test_check_payload_and_escape_units() -> None:
    from spokehub.engine.validation import check_payload, escape_invalid

    check_payload({"fine": ["é", "\\u0000 as text"]}, "x", max_bytes=None)
    with pytest.raises(sh.InvalidInput, match=r"x\.k\[1\]"):
        check_payload({"k": ["ok", NUL]}, "x", max_bytes=None)
    assert escape_invalid({SURROGATE: (NUL, 1)}) == {"\\ud800": ["a\\u0000b", 1]}


# -- the CLI door ------------------------------------------------------------------------------
APP = str(Path(__file__).parent / "apps" / "cli_flows.py")
runner = CliRunner()


@pytest.mark.parametrize("run_id", ["", "   ", "\t", "a/b", "../x", "a\x01b"])
def test_cli_run_id_rule(tmp_path: Path, run_id: str) -> None:
    db = str(tmp_path / "cli.db")
    result = runner.invoke(
        app, ["--db", db, "run", f"{APP}:cli_sum", "--input", '{"a": 1}', "--id", run_id]
    )
    assert result.exit_code == 2, result.output
    assert "run id" in result.stderr
    assert "Traceback" not in result.stderr
    listed = runner.invoke(app, ["--db", db, "runs", "list", "--json"])
    assert json.loads(listed.stdout) == []


def test_cli_refuses_invalid_text_in_input_and_lookups(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    bad = runner.invoke(
        app, ["--db", db, "run", f"{APP}:cli_sum", "--input", '{"a": 1, "b": "\\ud800"}']
    )
    assert bad.exit_code == 2
    assert "UTF-8" in bad.stderr
    assert json.loads(runner.invoke(app, ["--db", db, "runs", "list", "--json"]).stdout) == []


def test_cli_shows_a_stored_bad_row_escaped(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    with Client(settings=Settings(database_url=f"sqlite:///{db}")) as client:
        handle = client.start(va_returns_bad_text)
        run_until_idle(client)
    shown = runner.invoke(app, ["--db", db, "runs", "show", handle.id])
    assert shown.exit_code == 0, shown.output
    assert "\\ud800" in shown.stdout
    as_json = runner.invoke(app, ["--db", db, "runs", "show", handle.id, "--json"])
    assert json.loads(as_json.stdout)["result"] == ["\\ud800", "a\\u0000b"]
    assert runner.invoke(app, ["--db", db, "runs", "list"]).exit_code == 0
