"""Every error spokehub raises, under one root.

Each error has a stable ``code`` for the CLI, the HTTP API and logs. Messages say what to do.

::

    SpokehubError
    ├── ConfigurationError        configuration      a setting or URL is wrong
    ├── RegistrationError         registration       a decorator or name was misused
    ├── SerializationError        serialization      a value is not JSON or a pydantic model
    ├── InvalidInput              invalid_input      bad text, a bad run id (also a ValueError)
    │   └── InputTooLarge         too_large          a payload over ``max_input_bytes``
    ├── WorkflowNotFound          workflow_not_found the workflow is not registered / importable
    ├── RunNotFound               run_not_found      no run has that id
    ├── RunIdConflict             run_id_conflict    the id exists with another workflow or input
    ├── InvalidRunState           invalid_state      the run cannot do that now (e.g. approve a
    │   │                                            run that waits for no approval)
    │   ├── ApprovalClosed        approval_closed    the approval closed already (409)
    │   └── DuplicateVote         duplicate_vote     this person voted on it already (409)
    ├── ApprovalForbidden         approval_forbidden not an assignee, or self-approval (403)
    ├── ApprovalLinkInvalid       approval_link_invalid  a link's signature is wrong (403)
    ├── ApprovalLinkGone          approval_link_gone a link was used or expired (410)
    ├── EncryptionKeyError        encryption_key     a payload's key is missing or wrong
    ├── StoreError                store              the database failed
    │   ├── StoreUnavailable      store_unavailable  unreachable or locked: try again later
    │   ├── SchemaError           schema             the schema is newer than this code, or broken
    │   └── LeaseLost             lease_lost         another worker owns the run now (fencing)
    ├── RunFailed                 run_failed         ``handle.result()`` of a failed run
    ├── RunCancelledError         run_cancelled      ``handle.result()`` of a cancelled run
    ├── ResultTimeout             result_timeout     ``handle.result(timeout=...)`` ran out
    ├── PolicyDenied              policy_denied      a policy denied a start, a step or a gate
    └── WorkflowError                                raised inside workflow code
        ├── StepFailed            step_failed        a step failed after its last attempt
        ├── StepTimeout           step_timeout       one attempt ran past ``timeout``
        ├── WaitTimeout           wait_timeout       a signal or approval did not come in time
        ├── ApprovalRejected      approval_rejected  a human rejected the approval
        ├── ChildRunFailed        child_failed       a child run failed or was cancelled
        ├── NonDeterminismError   non_determinism    replay met a different call than recorded
        └── WorkflowSandboxError  workflow_sandbox   workflow code used real time or I/O

    BaseException
    └── Cancelled                                    delivered into a cancelled workflow; it
                                                     derives from BaseException so that
                                                     ``except Exception`` cannot swallow it
"""

from __future__ import annotations

from typing import Any


class SpokehubError(Exception):
    """Root of every spokehub error."""

    code = "error"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "type": type(self).__name__, "message": str(self)}


class ConfigurationError(SpokehubError):
    code = "configuration"


class RegistrationError(SpokehubError):
    code = "registration"


class SerializationError(SpokehubError, TypeError):
    code = "serialization"


class InvalidInput(SpokehubError, ValueError):
    """Input refused at the door (see ``spokehub.engine.validation``); nothing was stored."""

    code = "invalid_input"


class InputTooLarge(InvalidInput):
    code = "too_large"


class WorkflowNotFound(SpokehubError, LookupError):
    code = "workflow_not_found"


class RunNotFound(SpokehubError, LookupError):
    code = "run_not_found"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}; list runs with `spokehub runs list`")
        self.run_id = run_id


class RunIdConflict(SpokehubError):
    code = "run_id_conflict"


class InvalidRunState(SpokehubError):
    code = "invalid_state"


class ApprovalClosed(InvalidRunState):
    code = "approval_closed"


class DuplicateVote(InvalidRunState):
    code = "duplicate_vote"


class ApprovalForbidden(SpokehubError, PermissionError):
    code = "approval_forbidden"


class ApprovalLinkInvalid(SpokehubError, PermissionError):
    code = "approval_link_invalid"


class ApprovalLinkGone(SpokehubError):
    code = "approval_link_gone"


class StoreError(SpokehubError):
    code = "store"


class StoreUnavailable(StoreError):
    """The database could not be reached or stayed locked: worth trying again later.

    Whether the operation that met it committed is unknown.
    """

    code = "store_unavailable"


class SchemaError(StoreError):
    code = "schema"


class LeaseLost(StoreError):
    code = "lease_lost"


class EncryptionKeyError(StoreError):
    """A payload is encrypted with a key that is not configured, or the key is wrong."""

    code = "encryption_key"


class RunFailed(SpokehubError):
    """The run ended in failure; ``error`` is the recorded error (type, message)."""

    code = "run_failed"

    def __init__(self, run_id: str, error: dict[str, Any] | None) -> None:
        self.run_id = run_id
        self.error = error or {}
        kind = self.error.get("type", "Error")
        super().__init__(f"run {run_id!r} failed: {kind}: {self.error.get('message', '')}")


class RunCancelledError(SpokehubError):
    code = "run_cancelled"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} was cancelled")
        self.run_id = run_id


class ResultTimeout(SpokehubError, TimeoutError):
    code = "result_timeout"


class PolicyDenied(SpokehubError):
    """A policy binding with the ``Deny`` action failed (or its evaluation failed: fail closed).

    Raised by a start that a policy refuses (nothing is stored), inside workflow code by
    ``policy_gate`` and in place of a step that a policy refused. ``violations`` are the
    messages with their policy, binding and reason; the run's ledger holds the full decision.
    """

    code = "policy_denied"
    retryable = False  # the same input meets the same policy: a retry cannot succeed

    def __init__(self, message: str, violations: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.violations = list(violations or [])

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "violations": self.violations}


class WorkflowError(SpokehubError):
    """Base of the errors that workflow code sees."""


class StepFailed(WorkflowError):
    """A step failed after its last attempt.

    The original exception class is not re-raised because replay must raise the same thing
    as the live run, and arbitrary exception classes cannot be rebuilt from the ledger.
    ``error_type`` holds the original class name.
    """

    code = "step_failed"

    def __init__(self, step: str, error_type: str, message: str, attempts: int) -> None:
        super().__init__(
            f"step {step!r} failed after {attempts} attempt(s): {error_type}: {message}"
        )
        self.step = step
        self.error_type = error_type
        self.message = message
        self.attempts = attempts


class StepTimeout(WorkflowError, TimeoutError):
    code = "step_timeout"


class WaitTimeout(WorkflowError, TimeoutError):
    code = "wait_timeout"


class ApprovalRejected(WorkflowError):
    code = "approval_rejected"

    def __init__(self, name: str, comment: str | None, by: str | None) -> None:
        why = f": {comment}" if comment else ""
        super().__init__(f"approval {name!r} was rejected by {by or 'someone'}{why}")
        self.name = name
        self.comment = comment
        self.by = by


class ChildRunFailed(WorkflowError):
    code = "child_failed"

    def __init__(self, run_id: str, status: str, error: dict[str, Any] | None) -> None:
        detail = (error or {}).get("message", "")
        super().__init__(f"child run {run_id!r} ended {status}: {detail}")
        self.run_id = run_id
        self.status = status
        self.error = error or {}


class NonDeterminismError(WorkflowError):
    code = "non_determinism"


class WorkflowSandboxError(WorkflowError):
    code = "workflow_sandbox"


class Cancelled(BaseException):
    """Delivered into workflow code when its run is cancelled."""

    code = "run_cancelled"


def error_info(exc: BaseException) -> dict[str, Any]:
    """The JSON form of an exception as the ledger records it."""
    info: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        info["code"] = code
    if isinstance(exc, PolicyDenied):
        info["violations"] = exc.violations
    details = getattr(exc, "details", None)
    if isinstance(details, dict):  # structured facts (a contract's JSON path and version)
        info["details"] = details
    if isinstance(exc, StepFailed):
        info["step"] = exc.step
        info["cause_type"] = exc.error_type
    return info
