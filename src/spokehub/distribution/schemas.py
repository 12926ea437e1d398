"""JSON Schemas of the manifest kinds (draft 2020-12), checked before anything else."""

from __future__ import annotations

from typing import Any

API_VERSION = "spokehub.dev/v1alpha1"
KINDS = ("Target", "Distribution", "Rollout", "AnalysisTemplate", "Policy")

_DURATION = {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)$"}
_NAME = {"type": "string", "pattern": r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"}

# Who decides a manual gate, and what happens when nobody does (spokehub.runtime approval()).
APPROVAL: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "assignees": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "quorum": {"type": "integer", "minimum": 1},
        "rejections": {"type": "integer", "minimum": 1},
        "allowSelf": {"type": "boolean"},
        "onTimeout": {"enum": ["reject", "approve", "escalate"]},
        "remindEvery": _DURATION,
        "escalateAfter": _DURATION,
        "escalateTo": {"type": "array", "items": {"type": "string", "minLength": 1}},
    },
}

SELECTOR: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}

_IGNORE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "path": {"type": "string", "description": "JSON Pointer inside a JSON resource"},
        "glob": {"type": "string", "description": "resource keys"},
        "cel": {"type": "string", "description": "predicate over `drift`"},
        "reason": {"type": "string"},
        "expiresAt": {"type": "string"},
    },
}

TARGET: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["adapter"],
    "properties": {
        "adapter": {"type": "string"},
        "config": {"type": "object"},
        "credentialsRef": {"type": "string", "pattern": r"^(env|file|secret):.+$"},
        "ownership": {
            "type": "object",
            "properties": {"marker": {"enum": ["header", "metadata-field", "lockfile", "none"]}},
        },
        "drift": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "mode": {"enum": ["off", "detect", "correct", "adopt"]},
                "interval": _DURATION,
                "correctionBudget": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"max": {"type": "integer", "minimum": 0}, "per": _DURATION},
                },
                "ignore": {"type": "array", "items": _IGNORE},
            },
        },
        "protect": {
            "type": "object",
            "properties": {"prune": {"enum": ["allow", "confirm", "deny"]}},
        },
        "alternatives": {"type": "array", "items": {"type": "object"}},
        "predictive": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "maxHold": _DURATION,
                "checkEvery": _DURATION,
                "maxFailureRate": {"type": "number", "minimum": 0, "maximum": 1},
                "maxLatency": _DURATION,
                "window": _DURATION,
                "halfLife": _DURATION,
                "maxRetryWait": _DURATION,
            },
        },
    },
}

DISTRIBUTION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["source", "targets"],
    "properties": {
        "source": {
            "type": "object",
            "additionalProperties": False,
            "required": ["use"],
            "properties": {"use": {"type": "string"}, "with": {"type": "object"}},
        },
        "patterns": {"type": "object"},
        "targets": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"selector": SELECTOR},
        },
        "matrix": {"type": "object"},
        "transforms": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["use"],
                "properties": {
                    "name": {"type": "string"},
                    "use": {"type": "string"},
                    "when": {"type": "string"},
                    "with": {"type": "object"},
                    "needs": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "policies": {"type": "array", "items": {"type": "string"}},
        "rollout": {"type": "string"},
        "prune": {"type": "boolean"},
    },
}

ROLLOUT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["waves"],
    "properties": {
        "waves": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "targets"],
                "properties": {
                    "name": {"type": "string"},
                    "targets": SELECTOR,
                    "maxConcurrent": {
                        "oneOf": [
                            {"type": "integer", "minimum": 1},
                            {"type": "string", "pattern": r"^\d{1,3}%$"},
                        ]
                    },
                    "analysis": {"type": "array", "items": {"type": "string"}},
                    "gate": {"enum": ["auto", "manual", "webhook"]},
                    "gateUrl": {"type": "string"},
                    "gateTimeout": _DURATION,
                    "gateEgressAllow": {"type": "array", "items": {"type": "string"}},
                    "approval": APPROVAL,
                },
            },
        },
        "onFailure": {
            "type": "object",
            "properties": {"action": {"enum": ["rollback", "pause"]}},
        },
        "rollbackWindow": {
            "type": "object",
            "properties": {"releases": {"type": "integer", "minimum": 0}},
        },
        "retryFailedRelease": {"type": "boolean"},
        "healthWait": _DURATION,
    },
}

ANALYSIS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["metrics"],
    "properties": {
        "args": {"type": "array", "items": {"type": "object"}},
        "metrics": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "provider"],
                "properties": {
                    "name": {"type": "string"},
                    "provider": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["http"],
                        "properties": {
                            "http": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["url"],
                                "properties": {
                                    "url": {"type": "string"},
                                    "jsonPath": {"type": "string"},
                                    "timeout": _DURATION,
                                },
                            }
                        },
                    },
                    "successCondition": {"type": "string"},
                    "failureCondition": {"type": "string"},
                    "interval": _DURATION,
                    "count": {"type": "integer", "minimum": 1},
                    "failureLimit": {"type": "integer", "minimum": -1},
                    "inconclusiveLimit": {"type": "integer", "minimum": 0},
                    "dryRun": {"type": "boolean"},
                },
            },
        },
    },
}

POLICY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["stages", "validations"],
    "properties": {
        "stages": {
            "type": "array",
            "items": {
                "enum": [
                    "pre-release",
                    "post-transform",
                    "pre-apply",
                    "analysis",
                    "drift",
                    "rollback",
                ]
            },
        },
        "match": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"targets": SELECTOR},
        },
        "action": {"enum": ["Deny", "Warn", "Audit"]},
        "validations": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["expression"],
                "properties": {
                    "expression": {"type": "string"},
                    "message": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
    },
}

SPECS = {
    "Target": TARGET,
    "Distribution": DISTRIBUTION,
    "Rollout": ROLLOUT,
    "AnalysisTemplate": ANALYSIS,
    "Policy": POLICY,
}

ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"enum": list(KINDS)},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": _NAME,
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "owner": {"type": "string"},
            },
        },
        "spec": {"type": "object"},
    },
}
