"""Patterns: the hub's versioned sources of truth, parsed, validated, built, diffed, released.

Pure and deterministic (the store is touched only by ``releases``): W3C DTCG 2025.10 design
tokens (format, colour and Resolver modules), OpenAPI 3.1 references, platform transforms with
content-addressed results, typed diffs with a computed SemVer bump, and immutable releases.

Typical use::

    from spokehub.patterns import load_hub, build

    hub = load_hub("path/to/hub")               # patterns/*.yaml manifests + their sources
    problems = hub.validate()                   # every Diagnostic, in one pass
    result = build(hub.get("ds.tokens.core"), "css")
    result.files    # {"tokens.css": b"...", "listing.json": b"..."}
    result.digests  # {"tokens.css": "sha256:...", ...}

Releases: ``plan_release(hub, created_by=..., parent=...)`` (validates, diffs against the parent
release's sources, checks versions) then ``await record_release(store, release, now)``.
"""

from __future__ import annotations

from spokehub.patterns.build import PLATFORMS, BuildCache, BuildResult, build, platforms_for
from spokehub.patterns.canonical import canonical_json, digest, digest_bytes
from spokehub.patterns.compare import PatternDiff, diff_hubs, diff_patterns, load_hub_at
from spokehub.patterns.diff import Change
from spokehub.patterns.dtcg.resolve import Token, TokenSet
from spokehub.patterns.dtcg.resolver import Explanation, Resolver, load_resolver
from spokehub.patterns.errors import (
    Diagnostic,
    PatternError,
    PatternNotFound,
    PatternValidationError,
    Position,
    VersionTooLow,
)
from spokehub.patterns.hub import Hub, Pattern, load_hub
from spokehub.patterns.manifest import API_VERSION, PatternManifest, pattern_schema
from spokehub.patterns.release import (
    Release,
    get_release,
    list_releases,
    plan_release,
    record_release,
)

__all__ = [
    "API_VERSION",
    "PLATFORMS",
    "BuildCache",
    "BuildResult",
    "Change",
    "Diagnostic",
    "Explanation",
    "Hub",
    "Pattern",
    "PatternDiff",
    "PatternError",
    "PatternManifest",
    "PatternNotFound",
    "PatternValidationError",
    "Position",
    "Release",
    "Resolver",
    "Token",
    "TokenSet",
    "VersionTooLow",
    "build",
    "canonical_json",
    "diff_hubs",
    "diff_patterns",
    "digest",
    "digest_bytes",
    "get_release",
    "list_releases",
    "load_hub",
    "load_hub_at",
    "load_resolver",
    "pattern_schema",
    "plan_release",
    "platforms_for",
    "record_release",
]
