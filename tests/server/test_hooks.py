"""Webhooks over HTTP: valid deliveries start runs once; forgeries and replays are refused
and recorded."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import httpx
import pytest

from spokehub.errors import ConfigurationError
from spokehub.ops.hooks import load_hooks, sign
from tests.server.conftest import HOOK_SECRET, LiveServer


def _deliver(
    live: LiveServer,
    hook: str,
    body: bytes,
    *,
    delivery_id: str | None = None,
    timestamp: int | None = None,
    secret: bytes = HOOK_SECRET,
    signature: str | None = None,
) -> tuple[str, httpx.Response]:
    delivery_id = delivery_id or f"msg_{secrets.token_hex(6)}"
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature or sign(secret, delivery_id, stamp, body),
        "content-type": "application/json",
    }
    with live.http() as http:  # no API token: the signature is the credential
        return delivery_id, http.post(f"/hooks/{hook}", content=body, headers=headers)


def _deliveries(live: LiveServer, delivery_id: str) -> list[dict[str, object]]:
    with live.http("viewer") as http:
        rows: list[dict[str, object]] = http.get(
            "/api/v1/webhooks/deliveries", params={"limit": 1000}
        ).json()
    return [row for row in rows if row["delivery_id"] == delivery_id]


def test_a_signed_delivery_starts_its_workflow(live: LiveServer) -> None:
    body = json.dumps({"ref": "main", "n": 1}).encode()
    delivery_id, answer = _deliver(live, "deploy", body)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    assert run_id == f"hook:deploy:{delivery_id}"
    assert live.wait_for(run_id, "completed")["result"] == {"ref": "main", "n": 1}
    [row] = _deliveries(live, delivery_id)
    assert row["status"] == "accepted"
    assert row["run_id"] == run_id


def test_body_as_keyword_arguments(live: LiveServer) -> None:
    _, answer = _deliver(live, "kw", b'{"kind": "push", "size": 3}')
    assert answer.status_code == 202, answer.text
    assert live.wait_for(answer.json()["run_id"], "completed")["result"] == "push:3"
    _, not_object = _deliver(live, "kw", b"[1, 2]")
    assert not_object.status_code == 400
    assert not_object.json()["error"]["code"] == "bad_body"


def test_a_replayed_delivery_id_never_starts_a_second_run(live: LiveServer) -> None:
    body = b'{"ref": "replay"}'
    delivery_id, first = _deliver(live, "deploy", body)
    assert first.status_code == 202
    _, again = _deliver(live, "deploy", body, delivery_id=delivery_id)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "replayed"
    with live.http("viewer") as http:
        runs = http.get("/api/v1/runs", params={"search": delivery_id}).json()
    assert len(runs) == 1
    statuses = sorted((row["status"], row["reason"]) for row in _deliveries(live, delivery_id))
    assert statuses == [("accepted", None), ("rejected", "replayed")]


def test_different_ids_with_the_same_body_start_different_runs(live: LiveServer) -> None:
    body = b'{"ref": "same body"}'
    _, one = _deliver(live, "deploy", body)
    _, two = _deliver(live, "deploy", body)
    assert one.status_code == two.status_code == 202
    assert one.json()["run_id"] != two.json()["run_id"]


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("bad_signature", 401, "bad_signature"),
        ("wrong_secret", 401, "bad_signature"),
        ("tampered_body", 401, "bad_signature"),
        ("stale", 401, "stale_timestamp"),
        ("future", 401, "stale_timestamp"),
        ("not_a_number", 400, "bad_timestamp"),
    ],
)
def test_forgeries_are_refused_and_recorded(
    live: LiveServer, case: str, status: int, reason: str
) -> None:
    body = b'{"ref": "forged"}'
    now = int(time.time())
    delivery_id = f"msg_{case}_{secrets.token_hex(4)}"
    if case == "bad_signature":
        _, answer = _deliver(live, "deploy", body, delivery_id=delivery_id, signature="v1,AAAA")
    elif case == "wrong_secret":
        _, answer = _deliver(live, "deploy", body, delivery_id=delivery_id, secret=b"x" * 32)
    elif case == "tampered_body":
        good = sign(HOOK_SECRET, delivery_id, now, body)
        _, answer = _deliver(
            live, "deploy", b'{"ref": "evil"}', delivery_id=delivery_id, signature=good
        )
    elif case in ("stale", "future"):
        stamp = now - 3600 if case == "stale" else now + 3600
        _, answer = _deliver(live, "deploy", body, delivery_id=delivery_id, timestamp=stamp)
    else:
        with live.http() as http:
            answer = http.post(
                "/hooks/deploy",
                content=body,
                headers={
                    "webhook-id": delivery_id,
                    "webhook-timestamp": "yesterday",
                    "webhook-signature": "v1,AAAA",
                },
            )
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == reason
    assert [(r["status"], r["reason"]) for r in _deliveries(live, delivery_id)] == [
        ("rejected", reason)
    ]
    with live.http("viewer") as http:
        assert http.get("/api/v1/runs", params={"search": delivery_id}).json() == []


def test_a_stale_delivery_can_not_be_replayed_with_a_fresh_signature_it_lacks(
    live: LiveServer,
) -> None:
    """Changing the timestamp of a captured delivery breaks its signature."""
    body = b'{"ref": "captured"}'
    old = int(time.time()) - 3600
    delivery_id = f"msg_{secrets.token_hex(6)}"
    captured = sign(HOOK_SECRET, delivery_id, old, body)
    _, answer = _deliver(live, "deploy", body, delivery_id=delivery_id, signature=captured)
    assert answer.json()["error"]["code"] == "bad_signature"


def test_unknown_hook_and_missing_headers(live: LiveServer) -> None:
    delivery_id, unknown = _deliver(live, "no-such-hook", b"{}")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_hook"
    assert [r["reason"] for r in _deliveries(live, delivery_id)] == ["unknown_hook"]
    with live.http() as http:
        bare = http.post("/hooks/deploy", content=b"{}")
    assert bare.status_code == 400
    assert bare.json()["error"]["code"] == "missing_headers"


def test_rotated_secrets_any_matching_signature_passes(live: LiveServer) -> None:
    body = b'{"ref": "rotation"}'
    now = int(time.time())
    delivery_id = f"msg_{secrets.token_hex(6)}"
    both = f"v1,bm90LXRoaXMtb25l {sign(HOOK_SECRET, delivery_id, now, body)}"
    _, answer = _deliver(live, "deploy", body, delivery_id=delivery_id, signature=both)
    assert answer.status_code == 202, answer.text


def test_hooks_file_mistakes_name_the_fix(tmp_path: Path) -> None:
    cases = {
        "missing.toml": None,
        "bad.toml": "[hooks.x\n",
        "no_workflow.toml": '[hooks.x]\nsecret_env = "S"\n',
        "unknown_key.toml": '[hooks.x]\nworkflow = "w"\nsecret_env = "S"\nsecert = 1\n',
        "bad_tolerance.toml": '[hooks.x]\nworkflow = "w"\nsecret_env = "S"\ntolerance = "soon"\n',
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigurationError):
            load_hooks(path)
    good = tmp_path / "good.toml"
    good.write_text('[hooks.x]\nworkflow = "w"\nsecret_env = "S"\ntolerance = 30\n')
    assert load_hooks(good)["x"].tolerance == 30.0


def test_a_delivery_whose_run_cannot_start_is_kept_and_may_be_retried(live: LiveServer) -> None:
    delivery_id, wrong = _deliver(live, "kw", b'{"colour": "red"}')
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "serialization"
    [row] = _deliveries(live, delivery_id)
    assert row["status"] == "rejected"
    assert str(row["reason"]).startswith("start failed")
    _, fixed = _deliver(live, "kw", b'{"kind": "retry"}', delivery_id=delivery_id)
    assert fixed.status_code == 202, fixed.text
    assert live.wait_for(fixed.json()["run_id"], "completed")["result"] == "retry:0"


@pytest.mark.parametrize("body", [b'{"x": "\\ud800"}', b'{"x": "a\\u0000"}', b'{"\\udc00": 1}'])
def test_a_body_with_invalid_text_is_refused_before_it_is_accepted(
    live: LiveServer, body: bytes
) -> None:
    delivery_id, answer = _deliver(live, "deploy", body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_input"
    recorded = _deliveries(live, delivery_id)
    assert [(r["status"], r["reason"], r["run_id"]) for r in recorded] == [
        ("rejected", "invalid_input", None)
    ]
    with live.http("viewer") as http:
        assert http.get(f"/api/v1/runs/hook:deploy:{delivery_id}").status_code == 404


@pytest.mark.parametrize("delivery_id", ["a/b", "../x", "a b"])
def test_a_delivery_id_that_cannot_be_a_run_id_is_refused(
    live: LiveServer, delivery_id: str
) -> None:
    _, answer = _deliver(live, "deploy", b"{}", delivery_id=delivery_id)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_id"
    assert "run id" in answer.json()["error"]["message"]
