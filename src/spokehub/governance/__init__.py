"""Governance: policies as code (CEL), hook points, the audit trail, secrets, signed approval
links and encryption at rest. The rules of approvals themselves are pure and live in
``spokehub.engine.approvals`` (the store applies them atomically).

This layer sits above the runtime and below integrations: it plugs into runs through the
runtime's interceptor seam, and the layers above (intelligence, distribution, agents) ask it
for decisions through ``Policies.decide`` at hook points of their own (``register_hook``).

Example:
    >>> policies = Policies(PolicySource("policies/"))               # doctest: +SKIP
    >>> client = Client(interceptors=[PolicyInterceptor(policies)])  # doctest: +SKIP
"""

from spokehub.errors import PolicyDenied
from spokehub.governance.audit import AuditEntry, AuditLog, Verification
from spokehub.governance.decisions import (
    BindingResult,
    PolicyDecision,
    Subject,
    Violation,
    evaluate,
)
from spokehub.governance.engines import (
    CelExprEngine,
    CompiledExpression,
    EvaluationFailed,
    PolicyEngine,
    RustCelEngine,
    engine_named,
)
from spokehub.governance.errors import (
    AuditChainBroken,
    CompileError,
    PolicyLoadError,
    Problem,
    SecretNotFound,
)
from spokehub.governance.hooks import (
    HOOK_APPROVAL,
    HOOK_GATE,
    HOOK_RUN_START,
    HOOK_STEP,
    HOOKS,
    DecisionSink,
    Policies,
    PolicyInterceptor,
    check_approval,
    policy_gate,
    register_hook,
)
from spokehub.governance.policyset import PolicySet, load_policy_dir, load_policy_texts
from spokehub.governance.redaction import REDACTOR, Redactor
from spokehub.governance.secrets import (
    EnvironmentProvider,
    FileProvider,
    SecretProvider,
    Secrets,
    SecretsInterceptor,
    configure_secrets,
    resolve_reference,
    secret,
)
from spokehub.governance.source import PolicySource
from spokehub.governance.wiring import govern, policies_of

__all__ = [
    "HOOKS",
    "HOOK_APPROVAL",
    "HOOK_GATE",
    "HOOK_RUN_START",
    "HOOK_STEP",
    "REDACTOR",
    "AuditChainBroken",
    "AuditEntry",
    "AuditLog",
    "BindingResult",
    "CelExprEngine",
    "CompileError",
    "CompiledExpression",
    "DecisionSink",
    "EnvironmentProvider",
    "EvaluationFailed",
    "FileProvider",
    "Policies",
    "PolicyDecision",
    "PolicyDenied",
    "PolicyEngine",
    "PolicyInterceptor",
    "PolicyLoadError",
    "PolicySet",
    "PolicySource",
    "Problem",
    "Redactor",
    "RustCelEngine",
    "SecretNotFound",
    "SecretProvider",
    "Secrets",
    "SecretsInterceptor",
    "Subject",
    "Verification",
    "Violation",
    "check_approval",
    "configure_secrets",
    "engine_named",
    "evaluate",
    "govern",
    "load_policy_dir",
    "load_policy_texts",
    "policies_of",
    "policy_gate",
    "register_hook",
    "resolve_reference",
    "secret",
]
