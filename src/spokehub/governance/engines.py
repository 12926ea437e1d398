"""CEL engines behind one small protocol, so the policy layer never depends on one binding.

``CelExprEngine`` (``cel-expr-python``, the official cel-cpp wrapper) is the default: it
type-checks at compile time and is fast on macro-heavy policies. ``RustCelEngine``
(``common-expression-language``, the Rust ``cel`` crate) is the second implementation; the
same conformance suite runs on both (``docs/governance.md`` lists where they differ).

Both are imported lazily: ``import spokehub`` never loads a CEL library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from spokehub.errors import ConfigurationError
from spokehub.governance.errors import CompileError

__all__ = [
    "CelExprEngine",
    "CompiledExpression",
    "EvaluationFailed",
    "PolicyEngine",
    "RustCelEngine",
    "engine_named",
]

_INSTALL = "install the governance extra: pip install 'spokehub[governance]'"
_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")
_MACRO_VARIABLE = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,")


class EvaluationFailed(Exception):
    """An expression raised, or gave an error value, at evaluation time (fail closed)."""


class CompiledExpression(Protocol):
    """One checked expression, evaluated many times."""

    def evaluate(self, activation: Any) -> Any:
        """The expression's value as plain Python (JSON-like) over an activation from
        ``PolicyEngine.bind``; raises ``EvaluationFailed``."""
        ...

    def result_type(self) -> str | None:
        """The checked type of the result (``BOOL``, ``TIMESTAMP``, ...), None if unknown."""
        ...


class PolicyEngine(Protocol):
    """Compiles CEL expressions over a fixed set of variable names (each of dynamic type)."""

    name: str

    def compile(self, expression: str, variables: Sequence[str]) -> CompiledExpression:
        """Parse and check ``expression``; raise ``CompileError`` with its position."""
        ...

    def bind(self, data: Mapping[str, Any]) -> Any:
        """The variables converted once for the engine, reused by several expressions
        (converting a large document per expression dominates the cost otherwise)."""
        ...


def _compile_error(text: str) -> CompileError:
    """The first ``<input>:L:C: message`` of a CEL error text, as a CompileError."""
    match = _POSITION.search(text)
    if match is None:
        return CompileError(text.strip().splitlines()[0] if text.strip() else "invalid")
    line, col, message = int(match.group(1)), int(match.group(2)), match.group(3)
    return CompileError(message.strip(), line, col)


class _CelExprProgram:
    __slots__ = ("_program",)

    def __init__(self, program: Any) -> None:
        self._program = program

    def evaluate(self, activation: Any) -> Any:
        try:
            value = self._program.eval(activation=activation)
        except Exception as exc:  # the binding raises on values it cannot convert
            raise EvaluationFailed(str(exc)) from None
        # Runtime errors come back as ERROR values, never exceptions: check every result.
        if value.type().name() == "ERROR":
            raise EvaluationFailed(str(value.value()))
        return value.plain_value()

    def result_type(self) -> str | None:
        return str(self._program.return_type())


class CelExprEngine:
    """``cel-expr-python``: checked at compile time against the declared variables."""

    name = "cel-expr-python"

    def __init__(self) -> None:
        try:
            from cel_expr_python import cel
        except ImportError as exc:
            raise ConfigurationError(f"cel-expr-python is not installed; {_INSTALL}") from exc
        self._cel = cel
        self._envs: dict[tuple[str, ...], Any] = {}

    def _env(self, variables: Sequence[str]) -> Any:
        key = tuple(sorted(variables))
        env = self._envs.get(key)
        if env is None:
            cel = self._cel
            env = self._envs[key] = cel.NewEnv(variables={v: cel.Type.DYN for v in key})
        return env

    def compile(self, expression: str, variables: Sequence[str]) -> CompiledExpression:
        try:
            program = self._env(variables).compile(expression)
        except RuntimeError as exc:
            raise _compile_error(str(exc)) from None
        return _CelExprProgram(program)

    def bind(self, data: Mapping[str, Any]) -> Any:
        try:
            return self._env(tuple(data)).Activation(data=data)
        except Exception as exc:  # a value the binding cannot convert (an int past 64 bits)
            raise EvaluationFailed(f"cannot pass the input to CEL: {exc}") from None


class _RustProgram:
    __slots__ = ("_program",)

    def __init__(self, program: Any) -> None:
        self._program = program

    def evaluate(self, activation: Any) -> Any:
        try:
            return self._program.execute(activation)
        except Exception as exc:  # KeyError, TypeError, ValueError, ZeroDivisionError, ...
            raise EvaluationFailed(f"{type(exc).__name__}: {exc}") from None

    def result_type(self) -> str | None:
        return None  # the crate does not type-check


class RustCelEngine:
    """``common-expression-language``: dynamic; unknown variables are caught from the
    program's references, since the library does no type checking."""

    name = "common-expression-language"

    def __init__(self) -> None:
        try:
            import cel
        except ImportError as exc:
            raise ConfigurationError(
                f"common-expression-language is not installed; {_INSTALL}"
            ) from exc
        self._cel = cel

    def compile(self, expression: str, variables: Sequence[str]) -> CompiledExpression:
        try:
            program = self._cel.compile(expression)
        except ValueError as exc:
            raise _compile_error(str(exc)) from None
        # The crate lists macro-bound names (the ``f`` of ``files.all(f, ...)``) as variables.
        known = set(variables) | set(_MACRO_VARIABLE.findall(expression))
        unknown = [v for v in program.references()["variables"] if v not in known]
        if unknown:
            raise CompileError(
                f"undeclared reference to {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )
        return _RustProgram(program)

    def bind(self, data: Mapping[str, Any]) -> Any:
        try:
            return self._cel.Context(variables=dict(data))
        except Exception as exc:
            raise EvaluationFailed(f"cannot pass the input to CEL: {exc}") from None


_ENGINES: dict[str, type[CelExprEngine] | type[RustCelEngine]] = {
    CelExprEngine.name: CelExprEngine,
    RustCelEngine.name: RustCelEngine,
}


def engine_named(name: str | None = None) -> PolicyEngine:
    """The engine called ``name`` (default ``cel-expr-python``)."""
    cls = _ENGINES.get(name or CelExprEngine.name)
    if cls is None:
        raise ConfigurationError(
            f"unknown policy engine {name!r}; choose one of {', '.join(sorted(_ENGINES))}"
        )
    return cls()
