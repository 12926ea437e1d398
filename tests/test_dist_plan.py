"""The pure plan: every action and every report, without I/O."""

from __future__ import annotations

from spokehub.distribution.inventory import Entry
from spokehub.distribution.model import Action, DesiredResource, Observed, digest
from spokehub.distribution.plan import Plan, TargetFacts, diff_target, unified

OWNER = "spokehub/d"


def facts(**kw: object) -> TargetFacts:
    return TargetFacts(owner=OWNER, **kw)  # type: ignore[arg-type]


def actions(plan: object) -> dict[str, str]:
    return {op.key: op.action.value for op in plan.ops}  # type: ignore[attr-defined]


def test_create_update_noop_with_digests_and_diffs() -> None:
    desired = {k: DesiredResource(k, v) for k, v in {"a": b"1\n", "b": b"2\n", "c": b"3\n"}.items()}
    observed = {"a": None, "b": Observed("b", b"old\n"), "c": Observed("c", b"3\n")}
    inv = {"b": Entry("b", digest(b"old\n"), "r0"), "c": Entry("c", digest(b"3\n"), "r0")}
    plan = diff_target("t", desired, observed, inv, [], facts())
    assert actions(plan) == {"a": "create", "b": "update", "c": "no-op"}
    update = next(op for op in plan.ops if op.key == "b")
    assert (update.before, update.after) == (digest(b"old\n"), digest(b"2\n"))
    assert "-old" in plan.diffs["b"]
    assert "+2" in plan.diffs["b"]
    assert plan.summary() == "1 to create, 1 to update, 0 to delete, 1 unchanged"


def test_foreign_and_unowned_resources_are_conflicts_never_updates() -> None:
    desired = {k: DesiredResource(k, b"new") for k in ("theirs", "stray")}
    observed = {
        "theirs": Observed("theirs", b"x", owner="other-tool"),
        "stray": Observed("stray", b"y"),
    }
    plan = diff_target("t", desired, observed, {}, [], facts())
    assert actions(plan) == {"theirs": "conflict", "stray": "conflict"}
    assert "owned by other-tool" in plan.ops[1].reason + plan.ops[0].reason
    assert plan.has_conflicts()


def test_immutable_target_turns_a_changed_version_into_a_conflict() -> None:
    desired = {"p-1.0.0.tgz": DesiredResource("p-1.0.0.tgz", b"new")}
    observed = {"p-1.0.0.tgz": Observed("p-1.0.0.tgz", b"old")}
    inv = {"p-1.0.0.tgz": Entry("p-1.0.0.tgz", digest(b"old"), "r1")}
    plan = diff_target("reg", desired, observed, inv, [], facts(immutable=True))
    assert actions(plan) == {"p-1.0.0.tgz": "conflict"}


def test_orphans_are_deleted_only_with_prune_and_never_when_edited() -> None:
    inv = {k: Entry(k, digest(b"v"), "r1") for k in ("gone", "kept", "edited", "vanished")}
    observed = {
        "gone": Observed("gone", b"v"),
        "kept": Observed("kept", b"v"),
        "edited": Observed("edited", b"hand edit"),
        "vanished": None,
    }
    off = diff_target("t", {}, observed, inv, [], facts(prune=False))
    assert set(actions(off).values()) == {"no-op"}
    on = diff_target("t", {}, observed, inv, [], facts(prune=True, prune_needs_approval=True))
    assert actions(on) == {
        "gone": "delete",
        "kept": "delete",
        "edited": "conflict",
        "vanished": "no-op",
    }
    assert on.prune_needs_approval
    cannot = diff_target("t", {}, observed, inv, [], facts(prune=True, can_delete=False))
    assert "delete" not in actions(cannot).values()


def test_discovered_resources_are_reported_not_planned() -> None:
    found = [
        Observed("notes.md", b"n"),
        Observed("x.css", b"x", owner="someone-else"),
        Observed("a", b"1"),
    ]
    plan = diff_target(
        "t", {"a": DesiredResource("a", b"1")}, {"a": Observed("a", b"1")}, {}, found, facts()
    )
    assert plan.unmanaged == ["notes.md"]
    assert plan.conflicting == ["x.css"]
    assert actions(plan) == {"a": "no-op"}


def test_write_only_targets_compare_with_the_inventory() -> None:
    inv = {"e": Entry("e", digest(b"same"), "r1")}
    same = diff_target(
        "hook", {"e": DesiredResource("e", b"same")}, {}, inv, [], facts(can_read=False)
    )
    assert actions(same) == {"e": "no-op"}
    new = diff_target("hook", {"f": DesiredResource("f", b"x")}, {}, inv, [], facts(can_read=False))
    assert actions(new)["f"] == "create"


def test_plan_digest_follows_the_world() -> None:
    desired = {"a": DesiredResource("a", b"1")}
    one = Plan("d", "r1", [diff_target("t", desired, {"a": None}, {}, [], facts())])
    two = Plan(
        "d",
        "r1",
        [
            diff_target(
                "t",
                desired,
                {"a": Observed("a", b"0")},
                {"a": Entry("a", digest(b"0"), "r0")},
                [],
                facts(),
            )
        ],
    )
    again = Plan("d", "r1", [diff_target("t", desired, {"a": None}, {}, [], facts())])
    assert one.digest == again.digest != two.digest
    assert one.has_changes()
    assert not one.has_errors()
    assert one.to_dict()["totals"]["create"] == 1


def test_unified_diff_of_binary_content_is_one_line() -> None:
    assert (
        unified("x.bin", b"\xff\xfe", b"\x00")
        == "binary or large resource x.bin: contents differ\n"
    )
    assert Action.NOOP.value == "no-op"


def test_label_selectors() -> None:
    from spokehub.distribution.selectors import matches

    labels = {"ring": "1", "env": "prod"}
    assert matches(None, labels)
    assert matches({"matchLabels": {"ring": "1"}}, labels)
    assert not matches({"matchLabels": {"ring": "0"}}, labels)
    ops = [
        ({"key": "env", "operator": "In", "values": ["prod", "staging"]}, True),
        ({"key": "env", "operator": "NotIn", "values": ["prod"]}, False),
        ({"key": "ring", "operator": "Exists"}, True),
        ({"key": "team", "operator": "DoesNotExist"}, True),
        ({"key": "ring", "operator": "DoesNotExist"}, False),
    ]
    for expr, want in ops:
        assert matches({"matchExpressions": [expr]}, labels) is want, expr
