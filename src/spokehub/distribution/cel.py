"""The CEL seam: compile once, evaluate many, fail closed.

Uses ``cel-expr-python`` (the cel-expr org's cel-cpp wrapper). When the governance layer's
``PolicyEngine`` is merged this module delegates to it; callers only see ``compile_cel`` and
``Expression.evaluate``. Runtime errors come back from cel-cpp as ERROR values; they are raised
here as ``CelError`` so nobody mistakes a broken expression for ``false``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from spokehub.distribution.errors import DistributionError


class CelError(DistributionError):
    """A CEL expression did not compile, or failed while evaluating."""

    code = "cel"


def _cel() -> Any:
    try:
        from cel_expr_python import cel
    except ImportError as exc:  # pragma: no cover - the distribution extra installs it
        raise CelError(
            "CEL expressions need cel-expr-python: pip install 'spokehub[distribution]'"
        ) from exc
    return cel


@functools.lru_cache(maxsize=64)
def _env(names: tuple[str, ...]) -> Any:
    cel = _cel()
    return cel.NewEnv(variables=dict.fromkeys(names, cel.Type.DYN))


class Expression:
    """A compiled CEL expression over DYN variables."""

    def __init__(self, source: str, program: Any, names: tuple[str, ...]) -> None:
        self.source = source
        self._program = program
        self._names = names

    def evaluate(self, data: Mapping[str, Any]) -> Any:
        values = {n: _plain(data.get(n)) for n in self._names}
        try:
            result = self._program.eval(data=values)
        except Exception as exc:  # cel-cpp raises plain RuntimeError on bad activations
            raise CelError(f"{self.source!r}: {exc}") from exc
        if str(result.type()) == "ERROR":
            raise CelError(f"{self.source!r}: {result.value()}")
        return result.plain_value()

    def check(self, data: Mapping[str, Any]) -> bool:
        """Evaluate a condition; anything but ``true`` is false, errors raise."""
        return self.evaluate(data) is True


@functools.lru_cache(maxsize=1024)
def _compile(source: str, names: tuple[str, ...]) -> Expression:
    try:
        program = _env(names).compile(source)
    except Exception as exc:
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
