"""A policy set: every policy of a directory compiled and type-checked once, with its bindings
and exceptions, and one digest that names the whole set.

Loading is all-or-nothing: any problem (bad YAML, an unknown variable, a binding to a policy
that does not exist, a CEL syntax or type error) refuses the whole set with every problem's file
and line, so a worker never runs half a policy set.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spokehub.governance.documents import (
    BindingDoc,
    ExceptionDoc,
    Expr,
    PolicyDoc,
    Validation,
    parse_documents,
)
from spokehub.governance.engines import CompiledExpression, PolicyEngine, engine_named
from spokehub.governance.errors import CompileError, PolicyLoadError, Problem

__all__ = [
    "VARIABLES",
    "CompiledPolicy",
    "CompiledValidation",
    "PolicySet",
    "load_policy_dir",
    "load_policy_texts",
    "policy_files",
]

# The CEL variables every expression may use (see docs/governance.md, "Input documents").
VARIABLES = ("object", "params", "request", "variables")
_VARIABLE_REF = re.compile(r"\bvariables\.([A-Za-z_]\w*)")
_SUFFIXES = (".yaml", ".yml")
# Variable values go back into CEL as plain data; these types cannot make the round trip.
_NOT_JSON = frozenset({"TIMESTAMP", "DURATION", "BYTES"})


@dataclass(frozen=True, slots=True)
class CompiledValidation:
    spec: Validation
    program: CompiledExpression
    message_program: CompiledExpression | None


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    doc: PolicyDoc
    digest: str
    match_conditions: tuple[tuple[str, CompiledExpression], ...]
    variables: tuple[tuple[str, CompiledExpression], ...]
    validations: tuple[CompiledValidation, ...]

    @property
    def name(self) -> str:
        return self.doc.name


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Compiled policies, their bindings and exceptions; ``digest`` names the set's content."""

    engine: str
    digest: str
    cel: PolicyEngine | None = None  # what compiled the set (binds activations for it)
    policies: dict[str, CompiledPolicy] = field(default_factory=dict)
    bindings: tuple[BindingDoc, ...] = ()
    exceptions: tuple[ExceptionDoc, ...] = ()
    files: tuple[str, ...] = ()

    @classmethod
    def empty(cls, engine: str = "none") -> PolicySet:
        return cls(engine=engine, digest=_digest([]))

    def summary(self) -> dict[str, object]:
        return {
            "digest": self.digest,
            "engine": self.engine,
            "policies": sorted(self.policies),
            "bindings": [b.name for b in self.bindings],
            "exceptions": [e.name for e in self.exceptions],
            "files": list(self.files),
        }


def _digest(items: Iterable[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for name, text in sorted(items):
        h.update(name.encode())
        h.update(b"\0")
        h.update(text.encode())
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


def _policy_digest(doc: PolicyDoc, engine: str) -> str:
    text = json.dumps({"engine": engine, "name": doc.name, "spec": doc.source}, sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class _Compiler:
    def __init__(self, engine: PolicyEngine, problems: list[Problem]) -> None:
        self.engine = engine
        self.problems = problems

    def one(self, doc: PolicyDoc, expr: Expr, what: str) -> CompiledExpression | None:
        try:
            return self.engine.compile(expr.text, VARIABLES)
        except CompileError as exc:
            first = expr.text.strip().splitlines()[0] if expr.text.strip() else expr.text
            self.problems.append(
                Problem(
                    doc.file,
                    expr.line + exc.line - 1,
                    f"Policy {doc.name!r} {what}: {exc} (column {exc.column}) in {first!r}",
                )
            )
            return None

    def check_variables(self, doc: PolicyDoc, expr: Expr, defined: Sequence[str]) -> None:
        for name in _VARIABLE_REF.findall(expr.text):
            if name not in defined:
                known = ", ".join(defined) or "none defined before this expression"
                self.problems.append(
                    Problem(
                        doc.file,
                        expr.line,
                        f"Policy {doc.name!r} uses unknown variable variables.{name} "
                        f"(known: {known}) in {expr.text.strip()!r}",
                    )
                )

    def check_variable_type(
        self, doc: PolicyDoc, name: str, expr: Expr, program: CompiledExpression | None
    ) -> None:
        kind = program.result_type() if program is not None else None
        if kind in _NOT_JSON:
            self.problems.append(
                Problem(
                    doc.file,
                    expr.line,
                    f"Policy {doc.name!r} variable {name!r} gives a {kind.lower()}; a variable "
                    "must give a JSON value (bool, number, string, list, map): compare "
                    "timestamps and durations inside the validation, e.g. "
                    "timestamp(request.time) < timestamp(params.until)",
                )
            )

    def policy(self, doc: PolicyDoc) -> CompiledPolicy | None:
        before = len(self.problems)
        names = [n for n, _ in doc.variables]
        conditions = []
        for name, expr in doc.match_conditions:
            self.check_variables(doc, expr, [])
            conditions.append((name, self.one(doc, expr, f"matchCondition {name!r}")))
        variables = []
        for i, (name, expr) in enumerate(doc.variables):
            self.check_variables(doc, expr, names[:i])
            program = self.one(doc, expr, f"variable {name!r}")
            self.check_variable_type(doc, name, expr, program)
            variables.append((name, program))
        validations = []
        for i, v in enumerate(doc.validations):
            self.check_variables(doc, v.expression, names)
            program = self.one(doc, v.expression, f"validations[{i}].expression")
            message = None
            if v.message_expression is not None:
                self.check_variables(doc, v.message_expression, names)
                message = self.one(doc, v.message_expression, f"validations[{i}].messageExpression")
            validations.append((v, program, message))
        if len(self.problems) > before:
            return None
        return CompiledPolicy(
            doc=doc,
            digest=_policy_digest(doc, self.engine.name),
            match_conditions=tuple((n, p) for n, p in conditions if p is not None),
            variables=tuple((n, p) for n, p in variables if p is not None),
            validations=tuple(
                CompiledValidation(v, p, m) for v, p, m in validations if p is not None
            ),
        )


def load_policy_texts(
    texts: Sequence[tuple[str, str]], *, engine: PolicyEngine | str | None = None
) -> PolicySet:
    """Compile (file name, YAML text) pairs into a set; raise ``PolicyLoadError`` on any problem."""
    cel = engine_named(engine) if engine is None or isinstance(engine, str) else engine
    problems: list[Problem] = []
    policies: dict[str, CompiledPolicy] = {}
    bindings: list[BindingDoc] = []
    exceptions: list[ExceptionDoc] = []
    seen: dict[tuple[str, str], Problem] = {}
    compiler = _Compiler(cel, problems)
    for file, text in texts:
        for obj in parse_documents(text, file, problems):
            key = (type(obj).__name__, obj.name)
            if key in seen:
                problems.append(
                    Problem(file, obj.line, f"{obj.name!r} is defined twice (also at {seen[key]})")
                )
                continue
            seen[key] = Problem(file, obj.line, "")
            if isinstance(obj, PolicyDoc):
                compiled = compiler.policy(obj)
                if compiled is not None:
                    policies[obj.name] = compiled
            elif isinstance(obj, BindingDoc):
                bindings.append(obj)
            else:
                exceptions.append(obj)
    declared = {name for kind, name in seen if kind == "PolicyDoc"}
    for b in bindings:
        if b.policy not in declared:
            known = ", ".join(sorted(declared)) or "none"
            problems.append(
                Problem(
                    b.file,
                    b.policy_line,
                    f"PolicyBinding {b.name!r} binds policy {b.policy!r}, which does not exist "
                    f"(policies: {known})",
                )
            )
    if problems:
        raise PolicyLoadError(problems)
    return PolicySet(
        engine=cel.name,
        digest=_digest(texts),
        cel=cel,
        policies=policies,
        bindings=tuple(bindings),
        exceptions=tuple(exceptions),
        files=tuple(f for f, _ in texts),
    )


def policy_files(directory: str | Path) -> list[Path]:
    """The YAML files under ``directory`` (recursively), in a stable order."""
    root = Path(directory)
    if not root.is_dir():
        raise PolicyLoadError(
            [Problem(str(root), 0, "not a directory; point SPOKEHUB_POLICY_DIR or DIR at one")]
        )
    return sorted(p for p in root.rglob("*") if p.suffix in _SUFFIXES and p.is_file())


def load_policy_dir(
    directory: str | Path, *, engine: PolicyEngine | str | None = None
) -> PolicySet:
    """Load and compile every ``*.yaml``/``*.yml`` file under ``directory``."""
    problems: list[Problem] = []
    texts: list[tuple[str, str]] = []
    for path in policy_files(directory):
        try:
            texts.append((str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), 0, f"cannot read: {exc}"))
    if problems:
        raise PolicyLoadError(problems)
    return load_policy_texts(texts, engine=engine)
