"""Diagnostics and errors of the pattern layer.

Every problem found in a source file is a :class:`Diagnostic` with the file, the 1-based line and
column, the JSON Pointer of the offending key and a stable ``code``. Validation collects all of
them in one pass; callers that want an exception get one :class:`PatternValidationError` that
carries the whole list.

::

    SpokehubError
    └── PatternError                pattern            a pattern operation failed
        ├── PatternValidationError  pattern_invalid    sources have errors (``.diagnostics``)
        ├── PatternNotFound         pattern_not_found  no pattern / release with that id
        └── VersionTooLow           version_too_low    declared version is below the computed bump
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from spokehub.errors import SpokehubError

__all__ = [
    "Diagnostic",
    "PatternError",
    "PatternNotFound",
    "PatternValidationError",
    "Position",
    "VersionTooLow",
]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where something is in a source file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


UNKNOWN = Position("<unknown>", 0, 0)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a source: what, where, and which key (JSON Pointer)."""

    code: str
    message: str
    position: Position
    pointer: str = ""
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f" ({self.pointer})" if self.pointer else ""
        return f"{self.position}: {self.severity}: {self.message} [{self.code}]{where}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.position.file,
            "line": self.position.line,
            "column": self.position.column,
            "pointer": self.pointer,
        }


class PatternError(SpokehubError):
    """Root of the pattern layer's errors."""

    code = "pattern"


class PatternValidationError(PatternError):
    """Sources have errors; ``diagnostics`` lists every one of them (errors and warnings)."""

    code = "pattern_invalid"

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=_sort_key)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        head = "\n".join(str(d) for d in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} error(s) in pattern sources:\n{head}{more}")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["diagnostics"] = [d.to_dict() for d in self.diagnostics]
        return out


class PatternNotFound(PatternError, LookupError):
    code = "pattern_not_found"


class VersionTooLow(PatternError):
    """The declared version is lower than the one the typed diff requires."""

    code = "version_too_low"

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message + "".join(f"\n  - {r}" for r in reasons))
        self.reasons = reasons


def _sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.position.file, d.position.line, d.position.column, d.code)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics in file, line, column order (stable output for tests and the CLI)."""
    return sorted(diagnostics, key=_sort_key)
