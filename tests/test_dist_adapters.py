"""Each adapter against the real thing: folders, a git repository, HTTP servers on loopback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from spokehub.distribution.adapters import is_installed, load_adapter_class
from spokehub.distribution.adapters.fs import LOCKFILE, FsAdapter
from spokehub.distribution.adapters.git import GitAdapter
from spokehub.distribution.adapters.http_cms import HttpCmsAdapter
from spokehub.distribution.adapters.registry import RegistryAdapter
from spokehub.distribution.adapters.webhook import WebhookAdapter
from spokehub.distribution.demo.cms import CmsServer
from spokehub.distribution.demo.webhook_sink import WebhookSink
from spokehub.distribution.errors import AdapterError, PreconditionFailed
from spokehub.distribution.model import Action, ApplyContext, Op, Precondition, Scope, digest

# The demo services listen on loopback, which the egress guard refuses unless allowed.
LOOPBACK = {"egressAllow": ["127.0.0.1"]}
CTX = ApplyContext(release="r1", owner="spokehub/d", summary="1 to create", distribution="d")


def create(key: str, data: bytes) -> Op:
    return Op(Action.CREATE, key, None, digest(data), data=data)


def test_fs_owns_what_it_writes_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("mine, not the hub's")
    fs = FsAdapter({"path": str(tmp_path)}, owner="spokehub/d")
    res = fs.apply(create("a/b.css", b"x"), idempotency_key="k", expect=Precondition(None), ctx=CTX)
    assert res.changed
    assert (tmp_path / "a/b.css").read_bytes() == b"x"
    again = fs.apply(
        create("a/b.css", b"x"), idempotency_key="k", expect=Precondition(None), ctx=CTX
    )
    assert not again.changed
    assert fs.calls["write"] == 1
    found = {o.key: o.owner for o in fs.discover(Scope())}
    assert found == {"a/b.css": "spokehub/d", "notes.md": None}
    assert "spokehub/d" in json.loads((tmp_path / LOCKFILE).read_text())["owners"]
    (tmp_path / "a/b.css").write_text("edited")
    update = Op(Action.UPDATE, "a/b.css", digest(b"x"), digest(b"y"), data=b"y")
    with pytest.raises(PreconditionFailed, match="plan again"):
        fs.apply(update, idempotency_key="k2", expect=update.precondition(), ctx=CTX)
    with pytest.raises(AdapterError, match="leaves the target folder"):
        fs.read(["../escape"])


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def test_git_branch_per_release_and_commit_only_when_the_tree_changes(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "README.md").write_text("app\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "init")
    git = GitAdapter({"path": str(tmp_path)}, owner="spokehub/d")
    git.apply_batch([(create("Sources/T.swift", b"let x = 1\n"), "k")], ctx=CTX)
    assert "patterns/r1" in _git(tmp_path, "branch", "--list")
    assert "1 to create" in _git(tmp_path, "log", "-1", "--format=%B", "patterns/r1")
    assert git.read(["Sources/T.swift"])["Sources/T.swift"].data == b"let x = 1\n"  # type: ignore[union-attr]
    assert git.read(["README.md"])["README.md"] is not None
    head = _git(tmp_path, "rev-parse", "patterns/r1")
    same = git.apply_batch([(create("Sources/T.swift", b"let x = 1\n"), "k")], ctx=CTX)
    assert not same[0].changed
    assert git.calls["write"] == 1
    assert _git(tmp_path, "rev-parse", "patterns/r1") == head
    r2 = ApplyContext(release="r2", owner="spokehub/d", summary="1 to update", distribution="d")
    upd = Op(
        Action.UPDATE,
        "Sources/T.swift",
        digest(b"let x = 1\n"),
        digest(b"let x = 2\n"),
        data=b"let x = 2\n",
    )
    git.apply_batch([(upd, "k2")], ctx=r2)
    assert _git(tmp_path, "rev-parse", "patterns/r2^") == head  # r2 builds on r1
    assert _git(tmp_path, "status", "--porcelain") == ""  # the user's work tree is never touched
    assert [o.key for o in git.discover(Scope())] == ["README.md", "Sources/T.swift"]


def test_http_cms_upsert_etag_and_idempotency_key(tmp_path: Path) -> None:
    with CmsServer() as server:
        cms = HttpCmsAdapter({"baseUrl": server.url, "space": "s", **LOOPBACK}, owner="spokehub/d")
        data = cms.canonicalize("token/a", b'{"b": 1, "a": 2}')
        assert data == b'{"a":2,"b":1}'
        op = create("token/a", data)
        assert cms.apply(op, idempotency_key="key-1", expect=op.precondition(), ctx=CTX).changed
        assert not cms.apply(op, idempotency_key="key-1", expect=op.precondition(), ctx=CTX).changed
        assert server.state.writes == 1
        seen = cms.read(["token/a", "token/b"])
        assert seen["token/b"] is None
        assert seen["token/a"].owner == "spokehub/d"  # type: ignore[union-attr]
        server.edit("s", "token/a", {"a": 9})  # someone edits it in the CMS
        upd = Op(Action.UPDATE, "token/a", digest(data), digest(b'{"a":3}'), data=b'{"a":3}')
        with pytest.raises(PreconditionFailed):
            cms.apply(upd, idempotency_key="key-2", expect=upd.precondition(), ctx=CTX)
        # A stale ETag is refused by the server too (a lost update is impossible).
        resp = httpx.put(
            f"{server.url}/entries/token/a?space=s",
            json={"data": {}},
            headers={"If-Match": '"nope"'},
        )
        assert resp.status_code == 412
        assert [o.key for o in cms.discover(Scope())] == ["token/a"]
        assert cms.health([]).status.value == "Healthy"
        server.state.faults = {"health": "down"}
        assert cms.health([]).status.value == "Degraded"
        with pytest.raises(AdapterError, match="type/id"):
            cms.read(["no-slash"])
    broken = HttpCmsAdapter({"baseUrl": "http://127.0.0.1:9/api", **LOOPBACK})
    with pytest.raises(AdapterError):
        broken.read(["token/a"])
    assert broken.health([]).status.value == "Degraded"


def test_webhook_standard_signature_and_stable_id() -> None:
    secret = "whsec_c2VjcmV0LWJ5dGVz"
    with WebhookSink(secret) as sink:
        hook = WebhookAdapter({"url": sink.url, **LOOPBACK}, credentials=secret)
        op = create("events/x", b'{"type": "release.promoted"}')
        hook.apply(op, idempotency_key="abc", expect=None, ctx=CTX)
        hook.apply(op, idempotency_key="abc", expect=None, ctx=CTX)  # a retry: same webhook-id
        assert len(sink.events) == 1
        assert sink.events[0]["id"] == "msg_abc"
        assert sink.rejected == 0
        wrong = WebhookAdapter({"url": sink.url, **LOOPBACK}, credentials="whsec_b3RoZXI=")
        with pytest.raises(AdapterError, match="401"):
            wrong.apply(op, idempotency_key="def", expect=None, ctx=CTX)
        assert not hook.capabilities()["read"]
        assert hook.read(["events/x"]) == {"events/x": None}
    with pytest.raises(AdapterError, match="credentialsRef"):
        WebhookAdapter({"url": "http://127.0.0.1:9"})


def test_registry_versions_are_immutable(tmp_path: Path) -> None:
    reg = RegistryAdapter({"path": str(tmp_path)})
    reg.apply(create("acme-tokens-1.0.0.tgz", b"v1"), idempotency_key="k", expect=None, ctx=CTX)
    same = reg.apply(
        create("acme-tokens-1.0.0.tgz", b"v1"), idempotency_key="k", expect=None, ctx=CTX
    )
    assert not same.changed
    assert reg.calls["write"] == 1
    with pytest.raises(AdapterError, match="immutable"):
        reg.apply(
            create("acme-tokens-1.0.0.tgz", b"v2"), idempotency_key="k2", expect=None, ctx=CTX
        )
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["packages"]["acme-tokens"]["1.0.0"]["digest"] == digest(b"v1")
    with pytest.raises(AdapterError, match="name>-<version"):
        reg.apply(create("not-a-package", b"x"), idempotency_key="k3", expect=None, ctx=CTX)
    keep = reg.apply(
        Op(Action.DELETE, "acme-tokens-1.0.0.tgz"), idempotency_key="k4", expect=None, ctx=CTX
    )
    assert not keep.changed
    assert (tmp_path / "acme-tokens-1.0.0.tgz").exists()


def test_adapter_lookup_and_entry_points() -> None:
    assert load_adapter_class("fs") is FsAdapter
    assert is_installed("registry")
    assert not is_installed("carrier-pigeon")
    with pytest.raises(AdapterError, match=r"entry point group 'spokehub\.adapters'"):
        load_adapter_class("carrier-pigeon")
