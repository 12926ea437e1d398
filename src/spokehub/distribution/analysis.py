"""Analysis metrics: measure over HTTP, read a JSON path, judge with CEL (Argo Rollouts' shape).

One measurement is ``Successful`` (successCondition true, or failureCondition false when only
that is given), ``Failed``, ``Inconclusive`` (neither) or ``Error`` (no answer, not JSON, no
value at the path). ``tally`` turns the measurements of one metric into its verdict with
``failureLimit`` and ``inconclusiveLimit``. The GET goes through the integrations HTTP
connector with the target's settings (``egressAllow``; ``timeout``, 5 s by default here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spokehub.distribution.adapters.outbound import exchange
from spokehub.distribution.cel import CelError, compile_cel
from spokehub.distribution.errors import AdapterError

_VARS = ["result", "args", "target"]
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_PATH = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]")


class NotApplicable(Exception):
    """The metric's URL names a target setting this target does not have."""


def render(template: str, values: Mapping[str, Any]) -> str:
    """Replace ``{{target.config.baseUrl}}``-style fields; a missing one is NotApplicable."""

    def one(match: re.Match[str]) -> str:
        value: Any = values
        for part in match.group(1).split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise NotApplicable(match.group(1))
            value = value[part]
        return str(value)

    return _TEMPLATE.sub(one, template)


def json_path(document: Any, path: str) -> Any:
    """A small JSONPath subset: ``$``, ``$.a.b``, ``$.items[0].name``."""
    if not path.startswith("$"):
        raise ValueError(f"JSON paths start with $: {path!r}")
    value = document
    rest = path[1:]
    for match in _PATH.finditer(rest):
        key, index = match.groups()
        if key is not None:
            if not isinstance(value, Mapping) or key not in value:
                raise KeyError(f"{path}: no {key!r}")
            value = value[key]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                raise KeyError(f"{path}: no item {index}")
            value = value[int(index)]
    return value


@dataclass(frozen=True, slots=True)
class Measurement:
    phase: str  # Successful | Failed | Inconclusive | Error | Skipped
    value: Any = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "value": self.value, "message": self.message}


def measure(
    metric: Mapping[str, Any], target: Mapping[str, Any], args: Mapping[str, Any]
) -> Measurement:
    """Take one measurement of ``metric`` for ``target``."""
    http = metric["provider"]["http"]
    try:
        url = render(http["url"], {"target": target, "args": args})
    except NotApplicable as exc:
        return Measurement("Skipped", message=f"target has no {exc}")
    try:
        resp = exchange(target.get("config") or {}, "GET", url, default_timeout=5.0)
    except AdapterError as exc:  # no answer, a refused address, an open breaker, 4xx/5xx
        return Measurement("Error", message=str(exc))
    try:
        value = json_path(json.loads(resp.text), http.get("jsonPath", "$"))
    except (ValueError, KeyError) as exc:
        return Measurement("Error", message=f"GET {url}: {exc}")
    return judge(metric, value, target, args)


def judge(
    metric: Mapping[str, Any], value: Any, target: Mapping[str, Any], args: Mapping[str, Any]
) -> Measurement:
    data = {"result": value, "args": dict(args), "target": dict(target)}
    try:
        if "failureCondition" in metric and compile_cel(metric["failureCondition"], _VARS).check(
            data
        ):
            return Measurement("Failed", value, "failureCondition is true")
        if "successCondition" in metric:
            ok = compile_cel(metric["successCondition"], _VARS).check(data)
            phase = (
                "Successful"
                if ok
                else ("Inconclusive" if "failureCondition" in metric else "Failed")
            )
            return Measurement(phase, value, "" if ok else "successCondition is false")
    except CelError as exc:
        return Measurement("Error", value, str(exc))
    return Measurement("Successful", value)


def tally(metric: Mapping[str, Any], phases: Sequence[str]) -> str:
    """The verdict of one metric so far: ``Failed``, ``Inconclusive`` or ``Successful``."""
    failure_limit = int(metric.get("failureLimit", 0))
    failed = sum(1 for p in phases if p in ("Failed", "Error"))
    if failure_limit >= 0 and failed > failure_limit:
        return "Failed"
    inconclusive = sum(1 for p in phases if p == "Inconclusive")
    if inconclusive > int(metric.get("inconclusiveLimit", 0)):
        return "Inconclusive"
    return "Successful"
