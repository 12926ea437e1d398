"""Secrets: resolution, providers, redaction by value, and the canary.

The canary run puts a secret in a run's input, a step's result, log lines (text, extras and an
exception's traceback), a step's exception and a workflow's own exception; then the SQLite file
(or every PostgreSQL table), the captured logs, the exported spans, the API's answers, the
dashboard's pages and the metrics are searched for it: zero hits, and its mask is where the
value was.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spokehub import Client, RetryPolicy, Settings, step, workflow
from spokehub.errors import ConfigurationError, StepFailed
from spokehub.governance.errors import SecretNotFound
from spokehub.governance.redaction import REDACTOR, Redactor, mask
from spokehub.governance.secrets import (
    EnvironmentProvider,
    FileProvider,
    Secrets,
    configure_secrets,
    resolve_reference,
    secret,
)
from spokehub.governance.wiring import govern
from spokehub.observability import Observability
from spokehub.ops import tokens
from spokehub.server.app import create_app
from spokehub.server.config import ServerConfig
from spokehub.store.base import Tx
from tests.browser.live_server import post_login

CANARY_NAME = "SPOKEHUB_TEST_CANARY"
CANARY = "sk_canary_7f3a9c1e5b2d4086"
log = logging.getLogger("canary.app")


@step(retry=RetryPolicy(max_attempts=1))
async def canary_use() -> str:
    token = secret(CANARY_NAME)
    log.warning("calling the API with token %s", token)
    log.warning("structured call", extra={"auth": {"value": token}, "note": f"t={token}"})
    try:
        raise KeyError(f"no such key {token}")
    except KeyError:
        log.exception("lookup failed")
    return f"response echoed {token}"


@step(retry=RetryPolicy(max_attempts=2, initial_delay=0))
async def canary_fail() -> None:
    raise RuntimeError(f"401 unauthorized for token {secret(CANARY_NAME)}")


@workflow
async def canary_flow(token: str) -> dict[str, Any]:
    echoed = await canary_use()
    caught = ""
    try:
        await canary_fail()
    except StepFailed as exc:
        caught = str(exc)
    return {"echoed": echoed, "caught": caught, "input": token}


@workflow
async def canary_crash() -> None:
    raise ValueError(f"the workflow itself saw {secret(CANARY_NAME)}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _EverythingFormatter(logging.Formatter):
    """The message, the traceback, and every attribute of the record (extras included)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in ("exc_info", "args")}
        return f"{super().format(record)} {fields!r}"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_EverythingFormatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def _database_text(client: Client, db_url: str) -> bytes:
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))

    def dump(tx: Tx) -> str:
        tables = [
            r[0]
            for r in tx.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            ).fetchall()
        ]
        assert "events" in tables
        out = []
        for table in tables:
            rows = tx.execute(f'SELECT row_to_json(t)::text FROM "{table}" t').fetchall()
            out += [r[0] for r in rows]
        return "\n".join(out)

    return asyncio.run(client.store.transact(dump, write=False)).encode()


def test_secret_canary(db_url: str, tmp_path: Path, captured_logs: io.StringIO) -> None:
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(f"# test secrets\nexport {CANARY_NAME}='{CANARY}'\n")
    configure_secrets(Secrets([FileProvider(secrets_file)]))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = Client(settings=Settings(database_url=db_url, poll_interval=0.05))
    obs = Observability(tracer_provider=provider)
    obs.instrument(client)
    govern(client)
    admin = asyncio.run(tokens.create_token(client, name="canary-admin", role="admin")).secret
    assert secret(CANARY_NAME) == CANARY  # resolved here: the API's start can mask the input
    port = _free_port()
    config = ServerConfig(
        settings=client.settings, secret=b"server secret for the tests, 32b", port=port, worker=True
    )
    app = create_app(config, client=client, metrics=obs)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, ws="none", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    answers: list[str] = []
    try:
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=base, headers=auth, timeout=10) as http:
            started = http.post(
                "/api/v1/runs",
                json={"workflow": "canary_flow", "run_id": "canary-1", "input": {"token": CANARY}},
            )
            assert started.status_code == 201, started.text
            answers.append(started.text)
            crash = http.post(
                "/api/v1/runs", json={"workflow": "canary_crash", "run_id": "canary-2"}
            )
            answers.append(crash.text)
            for run_id in ("canary-1", "canary-2"):
                for _ in range(400):
                    got = http.get(f"/api/v1/runs/{run_id}")
                    if got.json()["status"] in ("completed", "failed"):
                        break
                    time.sleep(0.025)
                answers.append(got.text)
            assert http.get("/api/v1/runs/canary-1").json()["status"] == "completed"
            assert http.get("/api/v1/runs/canary-2").json()["status"] == "failed"
            for path in ("/api/v1/runs", "/api/v1/audit?limit=1000", "/metrics"):
                answers.append(http.get(path).text)
        with httpx.Client(base_url=base, timeout=10) as browser:
            login = post_login(browser, admin, "/ui/runs")
            assert login.status_code == 303
            for path in ("/ui/runs", "/ui/runs/canary-1", "/ui/runs/canary-2", "/ui/audit"):
                page = browser.get(path)
                assert page.status_code == 200, (path, page.text[:300])
                answers.append(page.text)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    result = client.handle("canary-1").get().result
    stored = _database_text(client, db_url)
    client.close()
    configure_secrets(None)
    spans = "\n".join(s.to_json() for s in exporter.get_finished_spans())
    logs = captured_logs.getvalue()
    api = "\n".join(answers)
    # The value flowed everywhere it was put, masked:
    masked = mask(CANARY_NAME)
    assert result == {
        "echoed": f"response echoed {masked}",
        "caught": result["caught"],
        "input": masked,
    }
    assert masked in result["caught"]
    assert masked in logs
    assert masked in api
    assert "lookup failed" in logs
    assert "Traceback" in logs
    assert spans  # spans were exported
    # ... and never in the clear.
    assert CANARY.encode() not in stored
    assert CANARY not in logs, logs[max(0, logs.find(CANARY) - 600) : logs.find(CANARY) + 100]
    assert CANARY not in spans
    assert CANARY not in api


def test_providers_and_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOKEHUB_TEST_ENV_SECRET", "env-secret-value-1")
    assert secret("SPOKEHUB_TEST_ENV_SECRET") == "env-secret-value-1"
    assert resolve_reference("secret://SPOKEHUB_TEST_ENV_SECRET") == "env-secret-value-1"
    assert resolve_reference("plain") == "plain"
    with pytest.raises(SecretNotFound, match="SPOKEHUB_SECRETS_FILE"):
        secret("SPOKEHUB_TEST_NOPE")
    with pytest.raises(ValueError, match="non-empty"):
        secret("")
    bad = tmp_path / "bad.env"
    bad.write_text("NO_EQUALS_SIGN\n")
    with pytest.raises(ConfigurationError, match=r"bad\.env:1"):
        FileProvider(bad).get("X")
    with pytest.raises(ConfigurationError, match="cannot read"):
        FileProvider(tmp_path / "missing.env").get("X")
    env = {"SPOKEHUB_SECRETS_FILE": str(tmp_path / "s.env"), "A_TOKEN": ""}
    (tmp_path / "s.env").write_text("A_TOKEN=from-the-file-123\n")
    assert Secrets.from_env(env).get("A_TOKEN") == "from-the-file-123"  # empty env value skipped
    assert EnvironmentProvider({"P_X": "prefixed-value"}, prefix="P_").get("X") == "prefixed-value"


def test_redactor_masks_by_value() -> None:
    r = Redactor()
    with pytest.raises(ValueError, match="too short"):
        r.add("SHORT", "abc")
    r.add("QUOTED", 'pa"ss\\word-x')
    assert r.text('{"v":"pa\\"ss\\\\word-x"}') == '{"v":"[secret:QUOTED]"}'  # JSON-escaped form
    assert r.value({"k": ['pa"ss\\word-x', 1, ('pa"ss\\word-x',)]}) == {
        "k": ["[secret:QUOTED]", 1, ("[secret:QUOTED]",)]
    }
    cause = ValueError('cause pa"ss\\word-x')
    exc = RuntimeError('outer pa"ss\\word-x')
    exc.__cause__ = cause
    r.exception(exc)
    assert str(exc) == "outer [secret:QUOTED]"
    assert str(cause) == "cause [secret:QUOTED]"
    assert REDACTOR is not r


def test_database_url_from_a_secret_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from spokehub.cli.app import app

    db = tmp_path / "from-secret.db"
    monkeypatch.setenv("SPOKEHUB_TEST_DB_URL", f"sqlite:///{db}")
    result = CliRunner().invoke(app, ["--db", "secret://SPOKEHUB_TEST_DB_URL", "runs", "list"])
    assert result.exit_code == 0, result.output
    assert db.exists()
    result = CliRunner().invoke(app, ["--db", "secret://SPOKEHUB_TEST_NO_SUCH", "runs", "list"])
    assert result.exit_code == 2
    assert "SPOKEHUB_TEST_NO_SUCH" in result.output


def test_store_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    from spokehub.store import redaction as store_redaction

    monkeypatch.setattr(store_redaction, "_filters", [])
    assert store_redaction.filter_value({"a": "x"}) == {"a": "x"}
    assert not store_redaction.filters_active()
    store_redaction.add_text_filter(lambda text: text.replace("hidden-value", "[m]"))
    assert store_redaction.filters_active()
    assert store_redaction.filter_value({"a": "hidden-value"}) == {"a": "[m]"}
    same = {"a": "nothing to mask"}
    assert store_redaction.filter_value(same) is same
    odd = {"a": object()}
    assert store_redaction.filter_value(odd) is odd  # not JSON: left to the store to refuse
    assert store_redaction.dumps({"k": "hidden-value"}) == '{"k": "[m]"}'
