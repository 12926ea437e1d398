"""Generate a guide: locked sections offline, changed sections through a generator.

``GuideGenerator`` is the seam to the AI layer: anything with a ``model`` name and a
``generate(section, prompt)`` that returns the structured output. ``ScriptedGenerator`` answers
from a table (tests, demos, recorded fixtures). ``render_guide`` never calls a generator: it
renders the accepted sections from the lock, so a build is byte-identical and offline;
``refresh_guide`` calls the generator only for sections whose input or prompt digest changed and
records the answers as pending until approved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from spokehub.patterns.canonical import digest
from spokehub.patterns.guide.grounding import check_section
from spokehub.patterns.guide.lock import GuideLock, LockedSection
from spokehub.patterns.guide.skeleton import SkeletonSection, prompt_for, skeleton

__all__ = ["GuideGenerator", "RefreshReport", "ScriptedGenerator", "refresh_guide", "render_guide"]


class GuideGenerator(Protocol):
    """Produces one section's structured output (the AI layer's LLM step plugs in here)."""

    model: str

    def generate(self, section: SkeletonSection, prompt: str) -> dict[str, Any]: ...


@dataclass(slots=True)
class ScriptedGenerator:
    """Answers from a table keyed by section id; counts its calls."""

    answers: Mapping[str, dict[str, Any]]
    model: str = "scripted"
    calls: list[str] = field(default_factory=list)

    def generate(self, section: SkeletonSection, prompt: str) -> dict[str, Any]:
        self.calls.append(section.id)
        try:
            return dict(self.answers[section.id])
        except KeyError:
            raise LookupError(f"no scripted answer for section {section.id!r}") from None


@dataclass(slots=True)
class RefreshReport:
    """What a refresh did per section: reused, pending (awaiting approval) or rejected."""

    reused: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    rejected: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"reused": self.reused, "pending": self.pending, "rejected": self.rejected}


def _current(lock: GuideLock, pid: str, section: SkeletonSection) -> LockedSection | None:
    found = lock.accepted.get(pid, {}).get(section.id)
    if (
        found
        and found.input_digest == section.input_digest
        and found.prompt_digest == digest(prompt_for(section))
    ):
        return found
    return None


def refresh_guide(
    pattern_id: str, spec: dict[str, Any], lock: GuideLock, generator: GuideGenerator
) -> RefreshReport:
    """Generate the sections whose inputs changed; record them as pending in ``lock``."""
    report = RefreshReport()
    for section in skeleton(spec):
        if _current(lock, pattern_id, section) is not None:
            report.reused.append(section.id)
            continue
        prompt = prompt_for(section)
        waiting = lock.pending.get(pattern_id, {}).get(section.id)
        if (
            waiting
            and waiting.input_digest == section.input_digest
            and waiting.prompt_digest == digest(prompt)
            and not waiting.problems
        ):
            report.pending.append(section.id)  # already generated, still awaiting review
            continue
        output = generator.generate(section, prompt)
        problems = check_section(output, spec)
        lock.pending.setdefault(pattern_id, {})[section.id] = LockedSection(
            section.input_digest,
            digest(prompt),
            generator.model,
            output,
            digest(output),
            tuple(problems),
        )
        if problems:
            report.rejected[section.id] = problems
        else:
            report.pending.append(section.id)
    return report


def _section_text(output: dict[str, Any]) -> list[str]:
    lines = ["", f"## {output['title']}", "", output["body"].strip()]
    for sample in output["codeSamples"]:
        lines += ["", f"```{sample['language']}", sample["code"].rstrip("\n"), "```"]
    return lines


def render_guide(pattern_id: str, spec: dict[str, Any], lock: GuideLock) -> tuple[str, list[str]]:
    """The guide from accepted sections only, and the ids of sections not accepted yet."""
    info = spec.get("info") or {}
    lines = [f"# Getting started: {info.get('title', pattern_id)}"]
    missing: list[str] = []
    models: set[str] = set()
    body: list[str] = []
    for section in skeleton(spec):
        accepted = _current(lock, pattern_id, section)
        if accepted is None:
            missing.append(section.id)
            body += [
                "",
                f"## {section.title}",
                "",
                "*This section is being updated and awaits review.*",
            ]
            continue
        models.add(accepted.model)
        body += _section_text(accepted.output)
        body.append(f"\n<!-- section {section.id} {accepted.output_digest} -->")
    banner = (
        f"> Drafted with a language model ({', '.join(sorted(models)) or 'none'}) from the "
        "API specification and reviewed by people; each section is pinned in "
        "llm.lock.json."
    )
    return "\n".join([*lines, "", banner, *body]) + "\n", missing
