"""The demo hub's files: DTCG 2025.10 token sources with a light/dark Resolver document, an
OpenAPI 3.1 spec with an ``x-internal`` operation, their Pattern manifests, and the
distribution manifests that build them with ``spokehub.patterns`` per target platform."""

from __future__ import annotations

import json
from pathlib import Path

PRIMITIVES = {
    "color": {
        "$type": "color",
        "blue": {
            "600": {"$value": {"colorSpace": "srgb", "components": [0, 0.4, 0.8], "hex": "#0066CC"}}
        },
        "gray": {
            "100": {"$value": {"colorSpace": "srgb", "components": [0.96, 0.96, 0.96]}},
            "200": {"$value": {"colorSpace": "srgb", "components": [0.9, 0.9, 0.9]}},
            "800": {"$value": {"colorSpace": "srgb", "components": [0.2, 0.2, 0.2]}},
            "900": {"$value": {"colorSpace": "srgb", "components": [0.1, 0.1, 0.1]}},
        },
    },
    "space": {
        "$type": "dimension",
        "sm": {"$value": {"value": 8, "unit": "px"}},
        "md": {"$value": {"value": 16, "unit": "px"}},
    },
}

SEMANTIC = {
    "color": {
        "$type": "color",
        "bg": {"$value": "{color.gray.100}", "$description": "page background"},
        "text": {"$value": "{color.gray.900}"},
        "accent": {"$value": "{color.blue.600}"},
    }
}

LIGHT: dict[str, object] = {}
DARK = {
    "color": {
        "bg": {"$value": "{color.gray.900}"},
        "text": {"$value": "{color.gray.100}"},
    }
}

RESOLVER = {
    "version": "2025.10",
    "name": "acme",
    "sets": {
        "foundation": {
            "sources": [{"$ref": "primitives.tokens.json"}, {"$ref": "semantic.tokens.json"}]
        }
    },
    "modifiers": {
        "theme": {
            "contexts": {
                "light": [{"$ref": "themes/light.tokens.json"}],
                "dark": [{"$ref": "themes/dark.tokens.json"}],
            },
            "default": "light",
        }
    },
    "resolutionOrder": [{"$ref": "#/sets/foundation"}, {"$ref": "#/modifiers/theme"}],
}

OPENAPI = """openapi: 3.1.0
info: {title: Orders API, version: 1.0.0}
paths:
  /orders:
    get: {summary: List orders, operationId: listOrders}
    post: {summary: Create an order, operationId: createOrder}
  /orders/{id}:
    get: {summary: Get one order, operationId: getOrder}
  /internal/reindex:
    post: {summary: Rebuild the search index, operationId: reindex, x-internal: true}
"""


PATTERNS = """\
apiVersion: spokehub.dev/v1alpha1
kind: Pattern
metadata:
  id: ds.tokens.core
  owner: design-systems
  license: Apache-2.0
  version: {version}
  labels: {{tier: public}}
spec:
  kind: design-tokens
  format: dtcg/2025.10
  resolver: tokens/resolver.json
  sources: ["tokens/**/*.tokens.json"]
  versioning: {{scheme: semver, bump: auto}}
---
apiVersion: spokehub.dev/v1alpha1
kind: Pattern
metadata: {{id: api.orders, owner: platform, license: Apache-2.0, version: 1.0.0}}
spec:
  kind: openapi
  format: openapi/3.1
  sources: [api/orders.openapi.yaml]
  platforms:
    api-docs: {{file: orders.md}}
"""


def write_release(
    hub: Path, release: str, version: str, *, accent: list[float] | None = None
) -> None:
    """Freeze the sources as release ``release``: a patterns hub in ``releases/<release>/``
    (Pattern manifests, the resolver and its token files, the OpenAPI spec)."""
    folder = hub / "releases" / release
    tokens = folder / "tokens"
    for sub in (tokens / "themes", folder / "api", folder / "patterns"):
        sub.mkdir(parents=True, exist_ok=True)
    prim = json.loads(json.dumps(PRIMITIVES))
    if accent is not None:
        prim["color"]["blue"]["600"]["$value"]["components"] = accent
        prim["color"]["blue"]["600"]["$value"].pop("hex", None)
    files = {
        tokens / "primitives.tokens.json": prim,
        tokens / "semantic.tokens.json": SEMANTIC,
        tokens / "themes" / "light.tokens.json": LIGHT,
        tokens / "themes" / "dark.tokens.json": DARK,
        tokens / "resolver.json": RESOLVER,
    }
    for path, body in files.items():
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    (folder / "api" / "orders.openapi.yaml").write_text(OPENAPI)
    # Written last: the manifest is what makes the folder a release (see ``prepare``).
    (folder / "patterns" / "hub.yaml").write_text(PATTERNS.format(version=version))


def manifests(cms_url: str, hook_url: str) -> str:
    # The CMS and the webhook sink run on loopback, which the egress guard refuses unless a
    # target lists it in egressAllow.
    return f"""\
apiVersion: spokehub.dev/v1alpha1
kind: Distribution
metadata: {{name: tokens-to-apps}}
spec:
  source: {{use: patterns}}
  targets:
    selector:
      matchExpressions:
        - {{key: platform, operator: In, values: [web, ios, android, docs, cms, registry, webhook]}}
  transforms:
    - name: css
      use: patterns.build
      when: "target.labels.platform == 'web'"
      with: {{platform: css, into: dist/}}
    - name: swift
      use: patterns.build
      when: "target.labels.platform == 'ios'"
      with: {{platform: swift, into: Sources/DesignSystem/}}
    - name: android
      use: patterns.build
      when: "target.labels.platform == 'android'"
      with: {{platform: android, into: res/}}
    - name: token-docs
      use: patterns.build
      when: "target.labels.platform == 'docs'"
      with: {{platform: markdown, pattern: ds.tokens.core, into: docs/}}
    - name: api-docs
      use: patterns.build
      when: "target.labels.platform == 'docs'"
      with: {{platform: api-docs, into: docs/api/}}
    - name: cms-entries
      use: patterns.entries
      when: "target.labels.platform == 'cms'"
      with: {{pattern: ds.tokens.core, types: [color]}}
    - name: package
      use: patterns.package
      when: "target.labels.platform == 'registry'"
      with: {{name: acme-tokens, pattern: ds.tokens.core, platforms: [css, dtcg-json]}}
    - {{use: event.release-promoted, when: "target.labels.platform == 'webhook'"}}
  policies: [no-mass-deletes]
  rollout: rings-default
  prune: true
---
apiVersion: spokehub.dev/v1alpha1
kind: Policy
metadata: {{name: no-mass-deletes}}
spec:
  stages: [pre-apply]
  match: {{targets: {{matchLabels: {{env: prod}}}}}}
  action: Deny
  validations:
    - expression: "plan.counts['delete'] <= 3"
      message: "more than 3 deletions on a production target: split the change"
      reason: BlastRadius
---
apiVersion: spokehub.dev/v1alpha1
kind: Rollout
metadata: {{name: rings-default}}
spec:
  waves:
    - name: canary
      targets: {{matchLabels: {{ring: "0"}}}}
      analysis: [content-smoke]
      gate: auto
    - {{name: broad, targets: {{matchLabels: {{ring: "1"}}}}, maxConcurrent: 50%, gate: manual}}
  onFailure: {{action: rollback}}
  rollbackWindow: {{releases: 3}}
---
apiVersion: spokehub.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: content-smoke}}
spec:
  metrics:
    - name: entries-present
      provider:
        http:
          url: "{{{{target.config.baseUrl}}}}/entries?space={{{{target.config.space}}}}"
          jsonPath: "$.count"
      successCondition: "result > 0"
      interval: 300ms
      count: 3
      failureLimit: 0
    - name: health
      provider: {{http: {{url: "{{{{target.config.baseUrl}}}}/health", jsonPath: "$.ok"}}}}
      successCondition: "result == true"
---
apiVersion: spokehub.dev/v1alpha1
kind: Target
metadata: {{name: docs, labels: {{platform: docs, ring: "0", env: staging}}}}
spec:
  adapter: fs
  config: {{path: targets/docs-site}}
  drift: {{mode: detect}}
---
apiVersion: spokehub.dev/v1alpha1
kind: Target
metadata: {{name: cms-staging, labels: {{platform: cms, ring: "0", env: staging}}}}
spec:
  adapter: http-cms
  config: {{egressAllow: ["127.0.0.1"], baseUrl: "{cms_url}", space: staging}}
  drift: {{mode: correct}}
---
apiVersion: spokehub.dev/v1alpha1
kind: Target
metadata: {{name: web, labels: {{platform: web, ring: "1", env: prod}}}}
spec:
  adapter: fs
  config: {{path: targets/web}}
  drift: {{mode: correct, correctionBudget: {{max: 3, per: 1h}}}}
---
apiVersion: spokehub.dev/v1alpha1
kind: Target
metadata: {{name: ios, labels: {{platform: ios, ring: "1", env: prod}}}}
spec:
  adapter: git
  config: {{path: targets/ios-app, baseBranch: main, branchPrefix: patterns/}}
  drift: {{mode: detect}}
---
apiVersion: spokehub.dev/v1alpha1
kind: Target
metadata: {{name: android, labels: {{platform: android, ring: "1", env: prod}}}}
spec:
  adapter: fs
  config: {{path: targets/android}}
  drift: {{mode: detect}}
---
apiVersion: spokehub.dev/v1alpha1
kind: Target
metadata: {{name: cms-prod, labels: {{platform: cms, ring: "1", env: prod}}}}
spec:
  adapter: http-cms
  config: {{egressAllow: ["127.0.0.1"], baseUrl: "{cms_url}", space: prod}}
  drift:
    mode: correct
    correctionBudget: {{max: 3, per: 1h}}
    ignore: [{{path: /lastViewedAt}}]
  protect: {{prune: confirm}}
---
apiVersion: spokehub.dev/v1alpha1
kind: Target
metadata: {{name: registry, labels: {{platform: registry, ring: "1", env: prod}}}}
spec:
  adapter: registry
  config: {{path: targets/registry}}
---
apiVersion: spokehub.dev/v1alpha1
kind: Target
metadata: {{name: events, labels: {{platform: webhook, ring: "1", env: prod}}}}
spec:
  adapter: webhook
  config: {{url: "{hook_url}", egressAllow: ["127.0.0.1"]}}
  credentialsRef: file:secrets/webhook-secret
"""
