"""Errors of the distribution layer, under ``SpokehubError`` with stable codes.

::

    SpokehubError
    └── DistributionError        distribution        a distribution operation failed
        ├── ManifestError        manifest_invalid    a manifest is wrong (carries file and line)
        ├── AdapterError         adapter             a target answered an error or garbage
        │   └── PreconditionFailed  precondition     the target changed since the plan
        ├── PlanStale            plan_stale          the world no longer matches the plan digest
        └── PolicyDenied         policy_denied       a policy denied the change
"""

from __future__ import annotations

from typing import Any

from spokehub.errors import SpokehubError


class DistributionError(SpokehubError):
    """Root of the distribution errors."""

    code = "distribution"


class ManifestError(DistributionError):
    """A manifest is invalid; ``file`` and ``line`` say where (``path`` is a JSON Pointer)."""

    code = "manifest_invalid"

    def __init__(self, message: str, *, file: str = "", line: int = 0, path: str = "") -> None:
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(f"{where}{message}")
        self.file, self.line, self.path, self.detail = file, line, path, message

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "file": self.file, "line": self.line, "path": self.path}


class AdapterError(DistributionError):
    """A target failed or answered something that makes no sense."""

    code = "adapter"


class PreconditionFailed(AdapterError):
    """The resource changed at the target since it was observed: applying would lose an edit."""

    code = "precondition"


class PlanStale(DistributionError):
    """The plan the user approved no longer matches the world."""

    code = "plan_stale"


class PolicyDenied(DistributionError):
    """A policy denied the change; the message is the policy's."""

    code = "policy_denied"
