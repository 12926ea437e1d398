"""The deterministic skeleton of a "Getting started" guide, computed from the public spec.

One section introduces the API (title, description, servers, security schemes); then one
section per resource (first path segment) lists its public operations with their parameters.
Each section's *input digest* covers exactly the facts it is generated from, so a change to one
resource regenerates only that resource's section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spokehub.patterns.canonical import digest
from spokehub.patterns.openapi import operations, visible_spec

__all__ = ["PROMPT_VERSION", "SkeletonSection", "prompt_for", "skeleton"]

PROMPT_VERSION = 1


@dataclass(frozen=True, slots=True)
class SkeletonSection:
    """What one section must cover, as data."""

    id: str
    title: str
    facts: dict[str, Any]

    @property
    def input_digest(self) -> str:
        return digest({"id": self.id, "title": self.title, "facts": self.facts})


def _op(path: str, method: str, op: dict[str, Any]) -> dict[str, Any]:
    params = [
        {"name": p.get("name"), "in": p.get("in"), "required": bool(p.get("required"))}
        for p in op.get("parameters") or []
        if isinstance(p, dict)
    ]
    return {
        "method": method.upper(),
        "path": path,
        "operationId": op.get("operationId"),
        "summary": op.get("summary"),
        "parameters": params,
        "requestBody": sorted(((op.get("requestBody") or {}).get("content") or {}).keys()),
    }


def skeleton(spec: dict[str, Any]) -> list[SkeletonSection]:
    """The guide's sections (intro first, then resources in path order)."""
    public = visible_spec(spec, internal=False)
    info = spec.get("info") or {}
    servers = [s.get("url") for s in spec.get("servers") or [] if isinstance(s, dict)]
    schemes = sorted(((spec.get("components") or {}).get("securitySchemes") or {}).keys())
    sections = [
        SkeletonSection(
            "intro",
            f"Getting started with {info.get('title', 'the API')}",
            {
                "title": info.get("title"),
                "description": info.get("description"),
                "version": info.get("version"),
                "servers": servers,
                "security": schemes,
            },
        )
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, method, op in operations(public, internal=False):
        resource = path.strip("/").split("/", 1)[0] or "root"
        groups.setdefault(resource, []).append(_op(path, method, op))
    for resource in sorted(groups):
        sections.append(
            SkeletonSection(
                f"resource-{resource}", f"Working with {resource}", {"operations": groups[resource]}
            )
        )
    return sections


def prompt_for(section: SkeletonSection) -> str:
    """The instruction sent with a section's facts (versioned; its digest is recorded)."""
    return (
        f"prompt v{PROMPT_VERSION}: Write the '{section.title}' section of a getting-started "
        "guide for developers. Use only the facts given; mention only the listed operations by "
        "METHOD and path; give at least one runnable code sample (curl in bash, or Python); "
        "answer as JSON with title, body (Markdown), codeSamples [{language, code}] and "
        "references [{method, path}]."
    )
