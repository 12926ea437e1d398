"""Governance errors (under ``SpokehubError``; ``PolicyDenied`` lives in ``spokehub.errors``
because runtime code re-raises it from a run's ledger).

::

    SpokehubError
    ├── PolicyDenied          policy_denied    a Deny binding failed, or its evaluation failed
    ├── PolicyLoadError       policy_invalid   a policy file is not valid (file and line named)
    ├── CompileError          policy_invalid   one CEL expression does not parse or type-check
    ├── AuditChainBroken      audit_broken     ``audit verify`` found a bad entry
    └── SecretNotFound        secret_not_found no provider knows the secret's name
"""

from __future__ import annotations

from dataclasses import dataclass

from spokehub.errors import PolicyDenied, SpokehubError

__all__ = [
    "AuditChainBroken",
    "CompileError",
    "PolicyDenied",
    "PolicyLoadError",
    "Problem",
    "SecretNotFound",
]


class CompileError(SpokehubError, ValueError):
    """A CEL expression that does not parse or type-check; ``line`` and ``column`` are 1-based
    positions inside the expression text."""

    code = "policy_invalid"

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a policy directory, where it is."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class PolicyLoadError(SpokehubError, ValueError):
    """Policy files that cannot be loaded; ``problems`` name each file and line."""

    code = "policy_invalid"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in the policy files; fix them and check again "
            f"with `spokehub policy check DIR`:\n{lines}"
        )


class AuditChainBroken(SpokehubError):
    code = "audit_broken"

    def __init__(self, message: str, entry_id: int | None) -> None:
        super().__init__(message)
        self.entry_id = entry_id


class SecretNotFound(SpokehubError, LookupError):
    code = "secret_not_found"
