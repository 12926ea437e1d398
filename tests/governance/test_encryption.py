"""Encryption at rest on SQLite and PostgreSQL: no plaintext stored, rotation, wrong keys."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from spokehub import Client, Settings, approval, step, wait_for_signal, workflow
from spokehub.cli.app import app
from spokehub.errors import ConfigurationError, EncryptionKeyError
from spokehub.store.crypto import PayloadCipher, parse_keys
from spokehub.testing import FakeClock, run_until_idle
from tests.pg import fresh_schema

CANARY = "canary-7f3a9c"
BIG = "x" * 20_000  # over the blob threshold


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


A = f"a1:{_key()}"
B = f"b2:{_key()}"


@step
async def enc_echo(text: str) -> str:
    return f"{text}-out"


@step
async def enc_big(text: str) -> str:
    return text + BIG


@workflow
async def enc_flow(secret: str) -> dict[str, Any]:
    small = await enc_echo(secret)
    big = await enc_big(secret)
    got = await wait_for_signal("more")
    return {"small": small, "big_len": len(big), "got": got, "echo": secret}


def _client(url: str, keys: str | None, clock: FakeClock) -> Client:
    return Client(settings=Settings(database_url=url, encryption_keys=keys), clock=clock)


def _run(url: str, keys: str | None, clock: FakeClock, run_id: str = "enc-1") -> Any:
    client = _client(url, keys, clock)
    try:
        handle = client.start(enc_flow.options(run_id=run_id), CANARY)
        run_until_idle(client)
        client.send_signal(handle.id, "more", {"note": CANARY})
        run_until_idle(client)
        return handle.result()
    finally:
        client.close()


def _stored_text(url: str) -> bytes:
    """Everything the database holds, as raw as we can get it."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    import psycopg

    with psycopg.connect(url) as conn:
        rows = []
        for table in ("runs", "events", "blobs", "inbox"):
            rows += conn.execute(f"SELECT * FROM {table}").fetchall()
        return repr(rows).encode()


def _payloads(url: str) -> list[str]:
    """Every payload column value (sealed or not)."""
    client = Client(settings=Settings(database_url=url))
    try:

        def read(tx: Any) -> list[str]:
            out: list[str] = []
            for sql in (
                "SELECT input FROM runs",
                "SELECT result FROM runs",
                "SELECT data FROM events",
                "SELECT data FROM blobs",
                "SELECT payload FROM inbox",
            ):
                out += [r[0] for r in tx.execute(sql).fetchall() if r[0] is not None]
            return out

        import asyncio

        return asyncio.run(client.store.transact(read, write=False))
    finally:
        client.close()


def test_nothing_is_stored_in_plaintext(db_url: str, clock: FakeClock) -> None:
    result = _run(db_url, A, clock)
    assert result == {
        "small": f"{CANARY}-out",
        "big_len": 20_000 + len(CANARY),
        "got": {"note": CANARY},
        "echo": CANARY,
    }
    assert CANARY.encode() not in _stored_text(db_url)
    assert all(p.startswith("enc:v1:a1:") for p in _payloads(db_url))
    assert BIG[:100].encode() not in _stored_text(db_url)


def test_without_keys_payloads_are_plain_and_the_canary_shows(
    db_url: str, clock: FakeClock
) -> None:
    """The check above can fail: the same run without keys leaves the canary in the database."""
    _run(db_url, None, clock)
    assert CANARY.encode() in _stored_text(db_url)


def test_rotation_re_seals_with_the_newest_key(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(db_url, None, clock, run_id="enc-plain")  # stored before encryption was turned on
    _run(db_url, A, clock, run_id="enc-a")
    both = f"{B},{A}"  # the new key first: it encrypts; the old one still decrypts
    reader = _client(db_url, both, clock)
    try:
        assert reader.handle("enc-a").result()["echo"] == CANARY
        assert reader.handle("enc-plain").result()["echo"] == CANARY
    finally:
        reader.close()
    monkeypatch.setenv("SPOKEHUB_ENCRYPTION_KEYS", both)
    rotated = CliRunner().invoke(app, ["--db", db_url, "db", "rotate-keys", "--batch", "3"])
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted" in rotated.stdout
    assert all(p.startswith("enc:v1:b2:") for p in _payloads(db_url))
    assert CANARY.encode() not in _stored_text(db_url)
    again = CliRunner().invoke(app, ["--db", db_url, "db", "rotate-keys", "--json"])
    assert '"events.data": 0' in again.stdout
    only_b = _client(db_url, B, clock)
    try:
        assert only_b.handle("enc-a").result()["echo"] == CANARY
    finally:
        only_b.close()
    only_a = _client(db_url, A, clock)
    try:
        with pytest.raises(EncryptionKeyError, match="key id 'b2'"):
            only_a.get_run("enc-a")
    finally:
        only_a.close()


def test_a_wrong_or_missing_key_is_a_clear_error(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(db_url, A, clock)
    wrong = _client(db_url, f"a1:{_key()}", clock)
    try:
        with pytest.raises(EncryptionKeyError, match=r"key id 'a1'.*wrong"):
            wrong.get_run("enc-1")
    finally:
        wrong.close()
    none = _client(db_url, None, clock)
    try:
        with pytest.raises(
            EncryptionKeyError, match="'a1' but SPOKEHUB_ENCRYPTION_KEYS is not set"
        ):
            none.events("enc-1")
    finally:
        none.close()
    monkeypatch.setenv("SPOKEHUB_ENCRYPTION_KEYS", f"a1:{_key()}")
    shown = CliRunner().invoke(app, ["--db", db_url, "runs", "show", "enc-1"])
    assert shown.exit_code == 5
    assert "key id 'a1'" in shown.output
    monkeypatch.delenv("SPOKEHUB_ENCRYPTION_KEYS")
    refused = CliRunner().invoke(app, ["--db", db_url, "db", "rotate-keys"])
    assert refused.exit_code == 2
    assert "SPOKEHUB_ENCRYPTION_KEYS" in refused.output


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "lists no key"),
        ("nokey", "KID:BASE64KEY"),
        ("a b:xyz", "KID:BASE64KEY"),
        ("k1:c2hvcnQ=", "must be 32 bytes"),
        ("k1:!!!", "must be 32 bytes"),
        (f"{A},{A}", "twice"),
    ],
)
def test_bad_key_settings_are_refused(text: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        parse_keys(text) if text else PayloadCipher(parse_keys(" , "))


def test_a_bad_key_setting_stops_the_client_before_it_writes(sqlite_url: str) -> None:
    client = Client(settings=Settings(database_url=sqlite_url, encryption_keys="k1:short"))
    try:
        with pytest.raises(ConfigurationError, match="32 bytes"):
            client.start(enc_flow, "x")
    finally:
        client.close()


def test_url_safe_keys_and_settings_from_the_environment() -> None:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    assert parse_keys(f" k-1.x:{key} ")[0][0] == "k-1.x"
    settings = Settings.from_env({"SPOKEHUB_ENCRYPTION_KEYS": A})
    assert settings.encryption_keys == A
    assert A.split(":")[1] not in repr(settings)


def test_copy_keeps_payloads_sealed(
    sqlite_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(sqlite_url, A, clock)
    monkeypatch.setenv("SPOKEHUB_ENCRYPTION_KEYS", A)
    with fresh_schema() as pg:
        copied = CliRunner().invoke(app, ["db", "copy", "--from", sqlite_url, "--to", pg])
        assert copied.exit_code == 0, copied.output
        assert CANARY.encode() not in _stored_text(pg)
        target = _client(pg, A, clock)
        try:
            assert target.handle("enc-1").result()["got"] == {"note": CANARY}
        finally:
            target.close()


def test_the_encryption_benchmark_runs() -> None:
    """benchmarks/encryption.py --quick ran and found no plaintext (speed is never checked)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "encryption.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "enc_bench_ten " in done.stdout
    assert "enc_bench_ten_2k" in done.stdout
    assert "ERROR" not in done.stdout


@workflow
async def enc_vote(doc: str) -> str:
    decision = await approval("ship", subject={"doc": doc}, assignees=["ann", "bo"], quorum=2)
    return decision.comment or ""


def test_vote_comments_are_sealed_and_rotated(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(db_url, A, clock)
    try:
        handle = client.start(enc_vote, CANARY)
        run_until_idle(client)
        client.vote(handle.id, approved=True, by="ann", comment=f"{CANARY} first")
        assert CANARY.encode() not in _stored_text(db_url)
    finally:
        client.close()
    monkeypatch.setenv("SPOKEHUB_ENCRYPTION_KEYS", f"{B},{A}")
    rotated = CliRunner().invoke(app, ["--db", db_url, "db", "rotate-keys", "--json"])
    assert '"approval_votes.comment": 1' in rotated.stdout
    client = _client(db_url, B, clock)
    try:
        client.vote(handle.id, approved=True, by="bo", comment="second")
        run_until_idle(client)
        assert client.handle(handle.id).result() == "second"
        decided = [e for e in client.events(handle.id) if e.kind.value == "approval_decided"]
        assert [v["comment"] for v in decided[0].data["votes"]] == [f"{CANARY} first", "second"]
    finally:
        client.close()


def test_webhook_signing_secrets_are_rotated_too(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from spokehub.integrations.webhooks import get_subscription, subscribe

    client = _client(db_url, A, clock)
    try:
        asyncio.run(client.ensure_schema())
        sub = asyncio.run(
            subscribe(client.store, "http://127.0.0.1:9/hook", ["run.*"], now=clock.now())
        )
    finally:
        client.close()
    assert sub.secret.encode() not in _stored_text(db_url)
    monkeypatch.setenv("SPOKEHUB_ENCRYPTION_KEYS", f"{B},{A}")
    rotated = CliRunner().invoke(app, ["--db", db_url, "db", "rotate-keys", "--json"])
    assert rotated.exit_code == 0, rotated.output
    assert '"webhook_subscriptions.secret": 1' in rotated.stdout
    only_b = _client(db_url, B, clock)  # the old key is gone: the secret still opens
    try:
        assert asyncio.run(get_subscription(only_b.store, sub.id)).secret == sub.secret
    finally:
        only_b.close()
