"""spokehub: durable workflows for Python, embedded on SQLite.

Example:
    >>> from spokehub import Client, step, workflow
    >>> @step
    ... async def greet(name: str) -> str:
    ...     return f"hello {name}"
    >>> @workflow
    ... async def hello(name: str) -> str:
    ...     return await greet(name)
    >>> Client("sqlite:///demo.db").run(hello, "world")  # doctest: +SKIP
    'hello world'
"""

import importlib
import typing

from spokehub.config import Settings
from spokehub.engine.events import Event, EventKind
from spokehub.engine.retry import RetryPolicy
from spokehub.errors import (
    ApprovalRejected,
    Cancelled,
    ChildRunFailed,
    ConfigurationError,
    InputTooLarge,
    InvalidInput,
    InvalidRunState,
    LeaseLost,
    NonDeterminismError,
    PolicyDenied,
    RegistrationError,
    ResultTimeout,
    RunCancelledError,
    RunFailed,
    RunIdConflict,
    RunNotFound,
    SerializationError,
    SpokehubError,
    StepFailed,
    StepTimeout,
    StoreError,
    StoreUnavailable,
    WaitTimeout,
    WorkflowError,
    WorkflowNotFound,
    WorkflowSandboxError,
)
from spokehub.runtime.context import StepContext, WorkflowContext, step_context, workflow_context
from spokehub.runtime.definitions import Queue, StepDefinition, Workflow, step, workflow
from spokehub.runtime.interceptors import (
    ActivateRunInput,
    EventsCommittedInput,
    ExecuteStepInput,
    Interceptor,
    StartRunInput,
)
from spokehub.runtime.primitives import (
    Decision,
    approval,
    approval_sync,
    call,
    sleep,
    sleep_sync,
    sleep_until,
    sleep_until_sync,
    wait_for_signal,
    wait_for_signal_sync,
)
from spokehub.types import RunStatus

if typing.TYPE_CHECKING:
    from spokehub.governance.hooks import policy_gate
    from spokehub.governance.secrets import secret
    from spokehub.runtime.client import Client, RunHandle
    from spokehub.runtime.worker import Worker

# The client, store and worker load on first use: a module that only declares workflows
# needs the decorators, and `import spokehub` stays fast (see benchmarks/README.md).
_LAZY = {
    "Client": "spokehub.runtime.client",
    "RunHandle": "spokehub.runtime.client",
    "Worker": "spokehub.runtime.worker",
    "policy_gate": "spokehub.governance.hooks",
    "secret": "spokehub.governance.secrets",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spokehub' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "ActivateRunInput",
    "ApprovalRejected",
    "Cancelled",
    "ChildRunFailed",
    "Client",
    "ConfigurationError",
    "Decision",
    "Event",
    "EventKind",
    "EventsCommittedInput",
    "ExecuteStepInput",
    "InputTooLarge",
    "Interceptor",
    "InvalidInput",
    "InvalidRunState",
    "LeaseLost",
    "NonDeterminismError",
    "PolicyDenied",
    "Queue",
    "RegistrationError",
    "ResultTimeout",
    "RetryPolicy",
    "RunCancelledError",
    "RunFailed",
    "RunHandle",
    "RunIdConflict",
    "RunNotFound",
    "RunStatus",
    "SerializationError",
    "Settings",
    "SpokehubError",
    "StartRunInput",
    "StepContext",
    "StepDefinition",
    "StepFailed",
    "StepTimeout",
    "StoreError",
    "StoreUnavailable",
    "WaitTimeout",
    "Worker",
    "Workflow",
    "WorkflowContext",
    "WorkflowError",
    "WorkflowNotFound",
    "WorkflowSandboxError",
    "__version__",
    "approval",
    "approval_sync",
    "call",
    "policy_gate",
    "secret",
    "sleep",
    "sleep_sync",
    "sleep_until",
    "sleep_until_sync",
    "step",
    "step_context",
    "wait_for_signal",
    "wait_for_signal_sync",
    "workflow",
    "workflow_context",
]
