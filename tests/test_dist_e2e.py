"""Distribution end to end on both backends: the demo's story, rollback, drift, policy, prune."""

from __future__ import annotations

import asyncio
import io
import subprocess
import tarfile
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from spokehub.cli.app import app
from spokehub.distribution import audit, inventory, service
from spokehub.distribution.demo.scenario import DIST, run_demo
from spokehub.distribution.steps import context_for
from tests.dist_support import API_DOCS, AUTO_GATE, demo_hub, real_client, release, rollout


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def inventories(db_url: str) -> dict[str, dict[str, tuple[str, str]]]:
    client = real_client(db_url)

    async def read() -> dict[str, dict[str, tuple[str, str]]]:
        await client.ensure_schema()
        found = await inventory.load_all(client.store, DIST)
        return {t: {k: (e.digest, e.release) for k, e in keys.items()} for t, keys in found.items()}

    try:
        return asyncio.run(read())
    finally:
        client.close()


def test_demo_story_then_a_second_run_writes_nothing(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    try:
        first = asyncio.run(run_demo(client, tmp_path, out=quiet()))
        second = asyncio.run(run_demo(client, tmp_path, out=quiet()))
    finally:
        client.close()
    assert first.first_run
    assert not second.first_run
    assert {r: o["status"] for r, o in first.rollouts.items()} == {
        "r1": "Succeeded",
        "r2": "Succeeded",
    }
    canary = first.rollouts["r1"]["waves"][0]
    assert canary["name"] == "canary"
    assert set(canary["targets"]) == {"docs", "cms-staging"}
    assert (
        canary["analysis"]["content-smoke/entries-present@cms-staging"]["verdict"] == "Successful"
    )
    assert first.plans["r1"]["totals"]["create"] == 25
    r2 = first.plans["r2"]["totals"]
    # One changed primitive: every token output's header names the new version and digest
    # (web, ios, 3 android files, docs/tokens.md), two CMS entries per space (the primitive and
    # its alias); a new package version and a new event; the API reference is untouched.
    assert (r2["create"], r2["update"], r2["delete"]) == (2, 10, 0)
    corrected = {k for d in first.drift for k in d["corrected"]}
    assert corrected == {"dist/tokens.css", "token/color-accent"}
    assert not any(d["resources"] and d["state"] == "Drifted" for d in first.drift_after)
    hub = tmp_path / "hub"
    assert (
        hub / "targets/docs-site/docs/notes.md"
    ).read_text() == "team notes (not from the hub)\n"
    assert "18px" not in (hub / "targets/web/dist/tokens.css").read_text()
    assert sorted(p.name for p in (hub / "targets/registry").glob("*.tgz")) == [
        "acme-tokens-1.0.0.tgz",
        "acme-tokens-1.0.1.tgz",
    ]
    assert_toolchain_outputs(hub)
    assert first.writes["(webhook receiver)"] == 2
    # The second run: every resource InSync, and not one write anywhere (adapters and servers).
    assert second.rollouts[next(iter(second.rollouts))]["status"] == "Succeeded"
    assert sum(second.writes.values()) == 0, second.writes
    assert second.seconds < 60


_SWIFT = "patterns/r2:Sources/DesignSystem/DesignTokens.swift"  # the release's branch


def assert_toolchain_outputs(hub: Path) -> None:
    """What the targets hold is what ``spokehub.patterns.build`` makes of release r2."""
    from spokehub.patterns import build, load_hub

    patterns = load_hub(hub / "releases/r2")
    tokens = patterns.get("ds.tokens.core")
    css = (hub / "targets/web/dist/tokens.css").read_bytes()
    assert css == build(tokens, "css").files["tokens.css"]
    text = css.decode()
    assert f"pattern ds.tokens.core@1.0.1 (source {tokens.digest[:19]})" in text
    assert "[data-theme='dark'] {\n  --color-bg: var(--color-gray-900);" in text
    assert "--color-accent: var(--color-blue-600);" in text  # aliases kept as var()
    night = (hub / "targets/android/res/values-night/colors.xml").read_text()
    assert '<color name="color_bg">#FF1A1A1A</color>' in night
    swift = subprocess.run(
        ["git", "-C", str(hub / "targets/ios-app"), "show", _SWIFT],
        check=True,
        capture_output=True,
    ).stdout
    assert swift == build(tokens, "swift").files["DesignTokens.swift"]
    api = (hub / "targets/docs-site/docs/api/orders.md").read_text()
    assert "pattern api.orders@1.0.0" in api
    assert "`POST /orders`" in api
    assert "reindex" not in api  # the x-internal operation is left out
    assert "/internal/" not in api
    with tarfile.open(hub / "targets/registry/acme-tokens-1.0.1.tgz") as tar:
        members = {m.name: tar.extractfile(m) for m in tar.getmembers()}
        assert set(members) >= {"package/package.json", "package/css/tokens.css"}
        packed = members["package/css/tokens.css"]
        assert packed is not None
        assert packed.read() == css


def test_a_failing_canary_rolls_every_applied_target_back(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    try:
        asyncio.run(run_demo(client, tmp_path, out=quiet()))
        before = inventories(db_url)
        result = asyncio.run(run_demo(client, tmp_path, fail_canary=True, out=quiet()))
        after = inventories(db_url)
        again = rollout(client, tmp_path / "hub", "r3")
    finally:
        client.close()
    r3 = result.rollouts["r3"]
    assert r3["status"] == "RolledBack"
    assert "content-smoke/entries-present@cms-staging failed" in r3["reason"]
    assert r3["rolled_back"] == ["docs", "cms-staging"]  # reverse order of application
    assert after == before  # every target holds exactly its previous digests
    assert [w["name"] for w in r3["waves"]] == ["canary"]  # the broad wave was never touched
    assert again["status"] == "Refused"
    assert "not retried automatically" in again["reason"]


def test_detect_reports_exactly_the_hand_edits_and_never_writes(
    db_url: str, tmp_path: Path
) -> None:
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _):
            assert rollout(client, hub, "r1")["status"] == "Succeeded"
            docs = hub / "targets/docs-site/docs/tokens.md"
            android = hub / "targets/android/res/values/dimens.xml"
            docs.write_text(docs.read_text() + "| extra | row |\n")
            android.unlink()
            snapshot = {p: p.read_bytes() for p in (hub / "targets").rglob("*") if p.is_file()}
            ctx = context_for(str(hub), DIST)
            counted = sum(a.calls["write"] + a.calls["delete"] for a in ctx._adapters.values())
            reports = asyncio.run(service.drift(client, hub, DIST))
            writes = sum(a.calls["write"] + a.calls["delete"] for a in ctx._adapters.values())
            writes -= counted
            after = {p: p.read_bytes() for p in (hub / "targets").rglob("*") if p.is_file()}
    finally:
        client.close()
    drifted = {(r.target, x.key, x.state.value) for r in reports for x in r.drifted()}
    assert drifted == {
        ("docs", "docs/tokens.md", "Modified"),
        ("android", "res/values/dimens.xml", "Missing"),
    }
    diff = next(x.diff for r in reports for x in r.resources if x.key == "docs/tokens.md")
    assert "+| extra | row |" in diff
    assert after == snapshot
    assert writes == 0


def test_a_policy_denial_exits_non_zero_with_its_message(db_url: str, tmp_path: Path) -> None:
    deny = {
        **AUTO_GATE,
        "expression: \"plan.counts['delete'] <= 3\"": "expression: \"plan.counts['create'] == 0\"",
        "more than 3 deletions on a production target: split the change": "prod is frozen today",
    }
    with demo_hub(tmp_path, edit=deny) as (hub, _, _):
        result = CliRunner().invoke(
            app, ["--db", db_url, "dist", "rollout", DIST, "r1", "--hub", str(hub)]
        )
        assert result.exit_code == 1, result.output
        assert "policy denied" in result.output
        assert "no-mass-deletes: prod is frozen today" in result.output
        assert "RolledBack" in result.output
        status = CliRunner().invoke(
            app, ["--db", db_url, "dist", "status", DIST, "--hub", str(hub), "--json"]
        )
        assert '"status": "RolledBack"' in status.output


def test_prune_deletes_only_what_the_hub_owns(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _):
            assert rollout(client, hub, "r1")["status"] == "Succeeded"
            notes = hub / "targets/docs-site/docs/api/notes.md"
            notes.write_text("kept")
            text = (hub / "manifests/hub.yaml").read_text()
            assert API_DOCS in text
            (hub / "manifests/hub.yaml").write_text(text.replace(API_DOCS, ""))
            release(hub, "r2", "1.0.1")
            plan = asyncio.run(service.plan(client, hub, DIST, "r2"))
            deletes = [
                (t.target, op.key)
                for t in plan.targets
                for op in t.ops
                if op.action.value == "delete"
            ]
            docs_plan = next(t for t in plan.targets if t.target == "docs")
            assert rollout(client, hub, "r2")["status"] == "Succeeded"
            assert not (hub / "targets/docs-site/docs/api/orders.md").exists()
            assert notes.read_text() == "kept"
    finally:
        client.close()
    assert deletes == [("docs", "docs/api/orders.md")]
    assert docs_plan.unmanaged == ["docs/api/notes.md"]


def test_fighting_after_the_correction_budget(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _):
            assert rollout(client, hub, "r1")["status"] == "Succeeded"
            css = hub / "targets/web/dist/tokens.css"
            good = css.read_text()
            states = []
            for i in range(5):
                css.write_text(good + f"/* someone else's edit {i} */\n")
                reports = asyncio.run(service.drift(client, hub, DIST, now=1_000_000.0 + 100 * i))
                web = next(r for r in reports if r.target == "web")
                states.append(
                    ("Fighting" if web.fighting else "corrected") if web.drifted() else "InSync"
                )
            left = css.read_text()
            trail = asyncio.run(service.timeline(client, DIST))
    finally:
        client.close()
    assert states == ["corrected", "corrected", "corrected", "Fighting", "Fighting"]
    assert left.endswith("edit 4 */\n")  # corrections stopped
    assert any(e["kind"] == "alert" and e["target"] == "web" for e in trail)


def test_the_audit_chain_verifies_over_a_rollout(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _):
            assert rollout(client, hub, "r1")["status"] == "Succeeded"

        async def check() -> tuple[tuple[bool, int, str], list[str], tuple[bool, int, str]]:
            ok = await audit.verify(client.store)
            kinds = [
                e.kind for e in await audit.entries(client.store, distribution=DIST, release="r1")
            ]
            await client.store.transact(
                lambda tx: tx.execute(
                    "UPDATE audit_log SET details = '{}' WHERE action = 'dist.apply'"
                )
            )
            return ok, kinds, await audit.verify(client.store)

        ok, kinds, tampered = asyncio.run(check())
    finally:
        client.close()
    assert ok[0]
    assert ok[1] >= len(kinds) > 20
    assert {"policy", "plan", "apply", "measurement", "analysis", "promotion.finished"} <= set(
        kinds
    )
    assert not tampered[0]
    assert "(dist.apply) was edited" in tampered[2]
