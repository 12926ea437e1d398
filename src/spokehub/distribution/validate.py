"""Semantic checks of a hub, after the schemas: everything refused before anything is applied.

Each problem is a ``ManifestError`` with the file and line of the offending value.
"""

from __future__ import annotations

from spokehub.distribution.adapters.base import is_installed
from spokehub.distribution.cel import CelError, compile_cel
from spokehub.distribution.errors import DistributionError
from spokehub.distribution.manifests import Hub, Manifest, seconds
from spokehub.distribution.policy import VARIABLES
from spokehub.distribution.selectors import matches
from spokehub.distribution.source import load_source
from spokehub.distribution.wiring import order_transforms, resolve_credentials


def validate_hub(hub: Hub) -> None:
    for target in hub.targets.values():
        _check_target(hub, target)
    for rollout in hub.of("Rollout").values():
        _check_rollout(hub, rollout)
    for template in hub.of("AnalysisTemplate").values():
        _check_analysis(template)
    for policy in hub.of("Policy").values():
        for i, v in enumerate(policy.spec["validations"]):
            _cel(policy, v["expression"], f"/spec/validations/{i}/expression", _POLICY_VARS)
    for dist in hub.of("Distribution").values():
        _check_distribution(hub, dist)


_POLICY_VARS = VARIABLES


def _cel(m: Manifest, source: str, pointer: str, variables: list[str]) -> None:
    try:
        compile_cel(source, variables)
    except CelError as exc:
        raise m.error(f"CEL does not compile: {exc}", pointer) from exc


def _check_target(hub: Hub, t: Manifest) -> None:
    if not is_installed(t.spec["adapter"]):
        raise t.error(
            f"adapter {t.spec['adapter']!r} is not installed (built in: fs, git, http-cms, "
            "webhook, registry; others come from packages with a spokehub.adapters entry point)",
            "/spec/adapter",
        )
    try:
        resolve_credentials(t.spec.get("credentialsRef"), hub.root)
    except DistributionError as exc:
        raise t.error(str(exc), "/spec/credentialsRef") from exc
    drift = t.spec.get("drift") or {}
    for i, rule in enumerate(drift.get("ignore", [])):
        if "cel" in rule:
            _cel(t, rule["cel"], f"/spec/drift/ignore/{i}/cel", ["drift"])
        if not ({"path", "glob", "cel"} & set(rule)):
            raise t.error("an ignore rule needs path, glob or cel", f"/spec/drift/ignore/{i}")


def _check_rollout(hub: Hub, r: Manifest) -> None:
    for i, wave in enumerate(r.spec["waves"]):
        for j, name in enumerate(wave.get("analysis", [])):
            if name not in hub.of("AnalysisTemplate"):
                raise r.error(
                    f"no AnalysisTemplate named {name!r}", f"/spec/waves/{i}/analysis/{j}"
                )
        if wave.get("gate") == "webhook" and not wave.get("gateUrl"):
            raise r.error("a webhook gate needs gateUrl", f"/spec/waves/{i}/gate")


def _check_analysis(a: Manifest) -> None:
    for i, metric in enumerate(a.spec["metrics"]):
        for cond in ("successCondition", "failureCondition"):
            if cond in metric:
                _cel(a, metric[cond], f"/spec/metrics/{i}/{cond}", ["result", "args", "target"])
        seconds(metric.get("interval"), 0)


def _check_source(hub: Hub, d: Manifest) -> None:
    """The source loads, and accepts every transform the Distribution names (if it can tell)."""
    src = d.spec["source"]
    try:
        source = load_source(hub.root, src["use"], src.get("with", {}))
    except DistributionError as exc:
        raise d.error(str(exc), "/spec/source/use") from exc
    check = getattr(source, "check", None)
    if check is None:
        return
    for i, t in enumerate(d.spec.get("transforms", [])):
        problem = check(t["use"], t.get("with", {}))
        if problem:
            where, message = problem
            pointer = f"/spec/transforms/{i}" + (f"/{where}" if where in t else "")
            raise d.error(message, pointer)


def _check_distribution(hub: Hub, d: Manifest) -> None:
    selector = (d.spec.get("targets") or {}).get("selector")
    targets = [t for t in hub.targets.values() if matches(selector, t.labels)]
    if not targets:
        raise d.error("the target selector matches no Target", "/spec/targets/selector")
    for i, name in enumerate(d.spec.get("policies", [])):
        if name not in hub.of("Policy"):
            raise d.error(f"no Policy named {name!r}", f"/spec/policies/{i}")
    order_transforms(d)
    for i, t in enumerate(d.spec.get("transforms", [])):
        if "when" in t:
            _cel(d, t["when"], f"/spec/transforms/{i}/when", ["target"])
    _check_source(hub, d)
    name = d.spec.get("rollout")
    if name is None:
        return
    if name not in hub.of("Rollout"):
        raise d.error(f"no Rollout named {name!r}", "/spec/rollout")
    rollout = hub.of("Rollout")[name]
    for i, wave in enumerate(rollout.spec["waves"]):
        if not any(matches(wave["targets"], t.labels) for t in targets):
            raise rollout.error(
                f"wave {wave['name']!r} selects no target of distribution {d.name!r}",
                f"/spec/waves/{i}/targets",
            )
