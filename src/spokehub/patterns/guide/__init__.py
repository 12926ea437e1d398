"""The LLM-assisted "Getting started" guide: skeleton, generator seam, grounding, lock file."""

from __future__ import annotations

from spokehub.patterns.guide.generate import (
    GuideGenerator,
    RefreshReport,
    ScriptedGenerator,
    refresh_guide,
    render_guide,
)
from spokehub.patterns.guide.grounding import SECTION_SCHEMA, check_section
from spokehub.patterns.guide.llm_generator import LLMGenerator
from spokehub.patterns.guide.lock import LOCK_NAME, GuideLock, LockedSection
from spokehub.patterns.guide.skeleton import SkeletonSection, prompt_for, skeleton

__all__ = [
    "LOCK_NAME",
    "SECTION_SCHEMA",
    "GuideGenerator",
    "GuideLock",
    "LLMGenerator",
    "LockedSection",
    "RefreshReport",
    "ScriptedGenerator",
    "SkeletonSection",
    "check_section",
    "prompt_for",
    "refresh_guide",
    "render_guide",
    "skeleton",
]
