"""Policy documents in YAML: ``Policy``, ``PolicyBinding`` and ``PolicyException``.

The shapes follow Kubernetes ValidatingAdmissionPolicy: the logic (``Policy``: match
conditions, variables, validations) is separate from where and how it is enforced
(``PolicyBinding``: which policy, what it matches, ``actions: [Deny|Warn|Audit]``, params).
A file may hold several documents separated by ``---``. Every parsed object keeps the file and
line it came from, so that each error names them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from spokehub.governance.errors import Problem

__all__ = [
    "ACTIONS",
    "API_VERSION",
    "BindingDoc",
    "ExceptionDoc",
    "Expr",
    "Match",
    "PolicyDoc",
    "Validation",
    "parse_documents",
]

API_VERSION = "spokehub.dev/v1"
ACTIONS = ("Deny", "Warn", "Audit")


class _Map(dict[str, Any]):
    """A YAML mapping that remembers the line of itself and of each value."""

    line: int = 0
    lines: dict[str, int]


@dataclass(frozen=True, slots=True)
class Expr:
    """A CEL expression and the line of the file where its text starts."""

    text: str
    line: int


@dataclass(frozen=True, slots=True)
class Validation:
    expression: Expr
    message: str | None = None
    message_expression: Expr | None = None
    reason: str = "Invalid"


@dataclass(frozen=True, slots=True)
class PolicyDoc:
    name: str
    file: str
    line: int
    match_conditions: tuple[tuple[str, Expr], ...] = ()
    variables: tuple[tuple[str, Expr], ...] = ()
    validations: tuple[Validation, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)  # the document, for its digest


@dataclass(frozen=True, slots=True)
class Match:
    """Which decisions a binding or exception applies to; each list holds glob patterns and
    an empty list matches anything."""

    hooks: tuple[str, ...] = ()
    workflows: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # step names, gate names, approval names
    actors: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # any of the step's (or workflow's) labels

    def matches(
        self,
        hook: str,
        workflow: str | None,
        name: str | None,
        actor: str | None,
        labels: tuple[str, ...] = (),
    ) -> bool:
        return (
            _any(self.hooks, hook)
            and _any(self.workflows, workflow)
            and _any(self.names, name)
            and _any(self.actors, actor)
            and (not self.labels or any(_any(self.labels, label) for label in labels))
        )


def _any(patterns: tuple[str, ...], value: str | None) -> bool:
    if not patterns:
        return True
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


@dataclass(frozen=True, slots=True)
class BindingDoc:
    name: str
    policy: str
    file: str
    line: int
    policy_line: int
    match: Match = Match()
    actions: tuple[str, ...] = ("Deny",)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExceptionDoc:
    name: str
    file: str
    line: int
    reason: str
    owner: str
    expires_at: float
    policies: tuple[str, ...] = ()  # policy names (globs); empty: any policy
    bindings: tuple[str, ...] = ()  # binding names (globs); empty: any binding
    match: Match = Match()

    def applies(self, policy: str, binding: str, now: float) -> bool:
        return (
            now < self.expires_at and _any(self.policies, policy) and _any(self.bindings, binding)
        )


def _load_yaml(text: str, file: str) -> list[Any]:
    import yaml

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Map:
        loader.flatten_mapping(node)
        out = _Map()
        out.line = node.start_mark.line + 1
        out.lines = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            out[str(key)] = loader.construct_object(value_node, deep=True)
            line = value_node.start_mark.line + 1
            # A block scalar's text starts on the line after its ``|`` or ``>``.
            if isinstance(value_node, yaml.ScalarNode) and value_node.style in ("|", ">"):
                line += 1
            out.lines[str(key)] = line
        return out

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return [d for d in yaml.load_all(text, Loader=Loader) if d is not None]


class _Reader:
    """Collects problems while reading one document, so a file reports them all at once."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems

    def fail(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def mapping(self, value: Any, where: str, line: int) -> _Map | None:
        if not isinstance(value, _Map):
            self.fail(line, f"{where} must be a mapping")
            return None
        return value

    def string(self, m: _Map, key: str, where: str, *, required: bool = True) -> str | None:
        value = m.get(key)
        if value is None:
            if required:
                self.fail(m.line, f"{where} needs {key!r}")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(m.lines.get(key, m.line), f"{where}.{key} must be a non-empty string")
            return None
        return value

    def strings(self, m: _Map, key: str, where: str) -> tuple[str, ...]:
        value = m.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(m.lines.get(key, m.line), f"{where}.{key} must be a list of strings")
            return ()
        return tuple(value)

    def expr(self, m: _Map, key: str, where: str, *, required: bool = True) -> Expr | None:
        text = self.string(m, key, where, required=required)
        if text is None:
            return None
        return Expr(text, m.lines.get(key, m.line))

    def match(self, m: _Map, where: str) -> Match:
        raw = m.get("match", _Map())
        spec = self.mapping(raw, f"{where}.match", m.lines.get("match", m.line))
        if spec is None:
            return Match()
        unknown = set(spec) - {"hooks", "workflows", "names", "actors", "labels"}
        if unknown:
            self.fail(
                spec.line,
                f"{where}.match has unknown keys {sorted(unknown)}; use hooks, workflows, "
                "names, actors, labels",
            )
        return Match(
            hooks=self.strings(spec, "hooks", f"{where}.match"),
            workflows=self.strings(spec, "workflows", f"{where}.match"),
            names=self.strings(spec, "names", f"{where}.match"),
            actors=self.strings(spec, "actors", f"{where}.match"),
            labels=self.strings(spec, "labels", f"{where}.match"),
        )

    def named_exprs(self, spec: _Map, key: str, where: str) -> tuple[tuple[str, Expr], ...]:
        items = spec.get(key, [])
        if not isinstance(items, list):
            self.fail(spec.lines.get(key, spec.line), f"{where}.{key} must be a list")
            return ()
        out: list[tuple[str, Expr]] = []
        for i, item in enumerate(items):
            m = self.mapping(item, f"{where}.{key}[{i}]", spec.lines.get(key, spec.line))
            if m is None:
                continue
            name = self.string(m, "name", f"{where}.{key}[{i}]")
            expr = self.expr(m, "expression", f"{where}.{key}[{i}]")
            if name is not None and expr is not None:
                out.append((name, expr))
        return tuple(out)


def _policy(r: _Reader, name: str, doc: _Map, spec: _Map) -> PolicyDoc | None:
    where = f"Policy {name!r}"
    raw = spec.get("validations")
    if not isinstance(raw, list) or not raw:
        r.fail(spec.lines.get("validations", spec.line), f"{where} needs a list of validations")
        return None
    validations: list[Validation] = []
    for i, item in enumerate(raw):
        m = r.mapping(item, f"{where}.validations[{i}]", spec.lines.get("validations", spec.line))
        if m is None:
            continue
        expr = r.expr(m, "expression", f"{where}.validations[{i}]")
        message = r.string(m, "message", f"{where}.validations[{i}]", required=False)
        msg_expr = r.expr(m, "messageExpression", f"{where}.validations[{i}]", required=False)
        reason = r.string(m, "reason", f"{where}.validations[{i}]", required=False)
        if expr is not None:
            validations.append(Validation(expr, message, msg_expr, reason or "Invalid"))
    return PolicyDoc(
        name=name,
        file=r.file,
        line=doc.line,
        match_conditions=r.named_exprs(spec, "matchConditions", where),
        variables=r.named_exprs(spec, "variables", where),
        validations=tuple(validations),
        source=_plain(spec),
    )


def _binding(r: _Reader, name: str, doc: _Map, spec: _Map) -> BindingDoc | None:
    where = f"PolicyBinding {name!r}"
    policy = r.string(spec, "policyName", where)
    actions = r.strings(spec, "actions", where) if "actions" in spec else ("Deny",)
    bad = [a for a in actions if a not in ACTIONS]
    if bad or not actions:
        r.fail(
            spec.lines.get("actions", spec.line),
            f"{where}.actions must list some of {', '.join(ACTIONS)}, got {list(actions)}",
        )
    params = spec.get("params", {})
    if not isinstance(params, dict):
        r.fail(spec.lines.get("params", spec.line), f"{where}.params must be a mapping")
        params = {}
    if policy is None:
        return None
    return BindingDoc(
        name=name,
        policy=policy,
        file=r.file,
        line=doc.line,
        policy_line=spec.lines.get("policyName", spec.line),
        match=r.match(spec, where),
        actions=tuple(a for a in actions if a in ACTIONS) or ("Deny",),
        params=_plain(params),
    )


def _timestamp(value: Any) -> float | None:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return _timestamp(parsed)
    return None


def _exception(r: _Reader, name: str, doc: _Map, spec: _Map) -> ExceptionDoc | None:
    where = f"PolicyException {name!r}"
    reason = r.string(spec, "reason", where)
    owner = r.string(spec, "owner", where)
    expires = _timestamp(spec.get("expiresAt"))
    if expires is None:
        r.fail(
            spec.lines.get("expiresAt", spec.line),
            f"{where} needs expiresAt as an RFC 3339 time, e.g. 2026-12-31T00:00:00Z "
            "(exceptions always expire)",
        )
    if reason is None or owner is None or expires is None:
        return None
    return ExceptionDoc(
        name=name,
        file=r.file,
        line=doc.line,
        reason=reason,
        owner=owner,
        expires_at=expires,
        policies=r.strings(spec, "policies", where),
        bindings=r.strings(spec, "bindings", where),
        match=r.match(spec, where),
    )


_KINDS = {"Policy": _policy, "PolicyBinding": _binding, "PolicyException": _exception}

Parsed = PolicyDoc | BindingDoc | ExceptionDoc


def _document(r: _Reader, doc: Any) -> Parsed | None:
    m = r.mapping(doc, "a policy document", 1)
    if m is None:
        return None
    kind = m.get("kind")
    if kind not in _KINDS:
        r.fail(
            m.lines.get("kind", m.line), f"kind must be one of {', '.join(_KINDS)}, got {kind!r}"
        )
        return None
    if m.get("apiVersion") != API_VERSION:
        r.fail(m.lines.get("apiVersion", m.line), f"apiVersion must be {API_VERSION!r}")
    meta = r.mapping(m.get("metadata"), f"{kind} metadata", m.lines.get("metadata", m.line))
    spec = r.mapping(m.get("spec"), f"{kind} spec", m.lines.get("spec", m.line))
    if meta is None or spec is None:
        return None
    name = r.string(meta, "name", f"{kind} metadata")
    if name is None:
        return None
    return _KINDS[kind](r, name, m, spec)


def parse_documents(text: str, file: str, problems: list[Problem]) -> list[Parsed]:
    """The objects in one file's text; problems are appended to ``problems``."""
    import yaml

    try:
        docs = _load_yaml(text, file)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problems.append(Problem(file, line, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return []
    reader = _Reader(file, problems)
    return [p for p in (_document(reader, d) for d in docs) if p is not None]


def _plain(value: Any) -> Any:
    """Plain dicts/lists (JSON-compatible) from the YAML tree."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
