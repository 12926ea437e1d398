"""Distribution: get every pattern to every target safely, and keep it there.

Split by verb like Argo CD's gitops-engine: ``plan`` (the pure diff), ``sync`` (plan and apply
against real targets), ``rollout`` (the durable promotion workflow, its ``steps``),
``analysis`` and ``health`` (adapters' ``health``), ``inventory`` (what spokehub owns),
``drift`` (read-only checks and healing), ``adapters`` (one module per target kind),
``manifests``/``validate`` (YAML in, errors with file and line) and ``audit``.

It sits above ``patterns`` and below ``ops`` (see ARCHITECTURE.md). Its seams to layers built
in parallel: ``source.ArtifactSource`` (patterns), ``policy.PolicyCheck`` and ``cel``
(governance), ``approval()`` for manual gates (runtime).
"""

from spokehub.distribution.adapters import BaseAdapter, TargetAdapter, load_adapter_class
from spokehub.distribution.drift_workflow import DRIFT_WORKFLOW as DRIFT_WORKFLOW
from spokehub.distribution.errors import (
    AdapterError,
    DistributionError,
    ManifestError,
    PlanStale,
    PolicyDenied,
    PreconditionFailed,
)
from spokehub.distribution.manifests import Hub, Manifest, load_hub
from spokehub.distribution.model import (
    Action,
    ApplyContext,
    Capabilities,
    DesiredResource,
    Health,
    HealthStatus,
    Observed,
    Op,
    OpResult,
    Precondition,
    Scope,
    digest,
)
from spokehub.distribution.plan import Plan, TargetPlan, diff_target
from spokehub.distribution.rollout import WORKFLOW_NAME, rollout_workflow
from spokehub.distribution.source import ArtifactSource, FilesSource, TargetView, TransformStep
from spokehub.distribution.steps import RolloutRequest
from spokehub.distribution.watch import WATCH_WORKFLOW, WatchRequest, drift_watch
from spokehub.distribution.wiring import DistContext

__all__ = [
    "WATCH_WORKFLOW",
    "WORKFLOW_NAME",
    "Action",
    "AdapterError",
    "ApplyContext",
    "ArtifactSource",
    "BaseAdapter",
    "Capabilities",
    "DesiredResource",
    "DistContext",
    "DistributionError",
    "FilesSource",
    "Health",
    "HealthStatus",
    "Hub",
    "Manifest",
    "ManifestError",
    "Observed",
    "Op",
    "OpResult",
    "Plan",
    "PlanStale",
    "PolicyDenied",
    "Precondition",
    "PreconditionFailed",
    "RolloutRequest",
    "Scope",
    "TargetAdapter",
    "TargetPlan",
    "TargetView",
    "TransformStep",
    "WatchRequest",
    "diff_target",
    "digest",
    "drift_watch",
    "load_adapter_class",
    "load_hub",
    "rollout_workflow",
]
