"""The CEL seam of distribution: compile once, evaluate many, fail closed.

Expressions compile with the governance layer's ``PolicyEngine`` (``engine_named()``, by
default ``cel-expr-python``), the same engine that decides policies at every other hook point,
so one CEL dialect and one set of engine quirks hold across the project. Callers only see
``compile_cel`` and ``Expression.evaluate``; compile errors and runtime errors (which cel-cpp
returns as ERROR values) are raised as ``CelError`` so nobody mistakes a broken expression for
``false``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from spokehub.distribution.errors import DistributionError
from spokehub.errors import ConfigurationError
from spokehub.governance.engines import (
    CompiledExpression,
    EvaluationFailed,
    PolicyEngine,
    engine_named,
)
from spokehub.governance.errors import CompileError


class CelError(DistributionError):
    """A CEL expression did not compile, or failed while evaluating."""

    code = "cel"


_ENGINE_LOCK = threading.Lock()


@functools.cache
def _engine() -> PolicyEngine:
    try:
        return engine_named()
    except ConfigurationError as exc:  # pragma: no cover - the distribution extra installs it
        raise CelError(
            "CEL expressions need cel-expr-python: pip install 'spokehub[distribution]'"
        ) from exc


class Expression:
    """A compiled CEL expression over DYN variables."""

    def __init__(self, source: str, program: CompiledExpression, names: tuple[str, ...]) -> None:
        self.source = source
        self._program = program
        self._names = names

    def evaluate(self, data: Mapping[str, Any]) -> Any:
        values = {n: _plain(data.get(n)) for n in self._names}
        try:
            return self._program.evaluate(_engine().bind(values))
        except EvaluationFailed as exc:
            raise CelError(f"{self.source!r}: {exc}") from None

    def check(self, data: Mapping[str, Any]) -> bool:
        """Evaluate a condition; anything but ``true`` is false, errors raise."""
        return self.evaluate(data) is True


@functools.lru_cache(maxsize=1024)
def _compile(source: str, names: tuple[str, ...]) -> Expression:
    engine = _engine()
    try:
        with _ENGINE_LOCK:  # the engine caches environments in a plain dict
            program = engine.compile(source, names)
    except CompileError as exc:
        raise CelError(" ".join(str(exc).split())) from exc
    return Expression(source, program, names)


def compile_cel(source: str, variables: Sequence[str]) -> Expression:
    """Compile ``source`` with the given DYN variables (cached by text and variables)."""
    return _compile(source, tuple(sorted(variables)))


def _plain(value: Any) -> Any:
    """JSON-compatible values only: cel-cpp rejects tuples, sets and other Python types."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
