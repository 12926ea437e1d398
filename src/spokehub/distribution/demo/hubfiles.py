"""The demo hub's files: token sources, an OpenAPI spec, and the manifests."""

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


def write_release(
    hub: Path, release: str, version: str, *, accent: list[float] | None = None
) -> None:
    """Snapshot the sources as release ``release`` (the stand-in for `patterns release`)."""
    folder = hub / "releases" / release
    tokens = folder / "tokens"
    (tokens / "themes").mkdir(parents=True, exist_ok=True)
    (folder / "api").mkdir(parents=True, exist_ok=True)
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
        folder / "release.json": {
            "pattern": "ds.tokens.core",
            "package": "acme-tokens",
            "version": version,
        },
    }
    for path, body in files.items():
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    (folder / "api" / "orders.openapi.yaml").write_text(OPENAPI)


def manifests(cms_url: str, hook_url: str) -> str:
    return f"""\
apiVersion: spokehub.dev/v1alpha1
kind: Distribution
metadata: {{name: tokens-to-apps}}
spec:
  source: {{use: "spokehub.distribution.demo.source:DemoSource"}}
  targets:
    selector:
      matchExpressions:
        - {{key: platform, operator: In, values: [web, ios, android, docs, cms, registry, webhook]}}
  transforms:
    - {{use: dtcg.resolve}}
    - {{use: dtcg.to-css-vars, when: "target.labels.platform == 'web'", needs: [dtcg.resolve]}}
    - {{use: dtcg.to-swift, when: "target.labels.platform == 'ios'", needs: [dtcg.resolve]}}
    - use: dtcg.to-android-xml
      when: "target.labels.platform == 'android'"
      needs: [dtcg.resolve]
    - {{use: dtcg.to-markdown, when: "target.labels.platform == 'docs'", needs: [dtcg.resolve]}}
    - {{use: openapi.to-markdown, when: "target.labels.platform == 'docs'"}}
    - {{use: dtcg.to-cms-entries, when: "target.labels.platform == 'cms'", needs: [dtcg.resolve]}}
    - {{use: package.tarball, when: "target.labels.platform == 'registry'", needs: [dtcg.resolve]}}
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
  config: {{baseUrl: "{cms_url}", space: staging}}
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
  config: {{baseUrl: "{cms_url}", space: prod}}
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
  config: {{url: "{hook_url}"}}
  credentialsRef: file:secrets/webhook-secret
"""
