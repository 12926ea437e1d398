"""A guide generator that asks a model through the AI layer (``spokehub.intelligence``).

``LLMGenerator(model)`` sends each changed section's instruction (``prompt_for``) as the system
message and the section's facts (the operations, parameters and schemas the skeleton picked
from the spec) as JSON in the user message, asks for JSON that fits ``SECTION_SCHEMA``
(``llm.complete`` validates it and re-asks with the errors up to ``repairs`` times), and
returns the answer. The grounding checks and the approval of pending sections then apply as
to any generator. Providers come from the ``SPOKEHUB_LLM_*`` settings or ``configure()``.

It runs outside workflows (the CLI's ``spokehub patterns guide --model``), so nothing is
recorded in a ledger: the lock file is the record, with each section's digests and model.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from spokehub.patterns.guide.grounding import SECTION_SCHEMA
from spokehub.patterns.guide.skeleton import SkeletonSection

__all__ = ["LLMGenerator"]


@dataclass(slots=True)
class LLMGenerator:
    """``generate`` one section with a model (an alias or name the AI layer resolves)."""

    model: str
    repairs: int = 2
    timeout: float | None = None

    def generate(self, section: SkeletonSection, prompt: str) -> dict[str, Any]:
        from spokehub.intelligence import llm

        facts = json.dumps(section.facts, ensure_ascii=False, sort_keys=True, default=str)
        call = llm.complete(
            f"Facts for the section '{section.title}' (id {section.id}, JSON):\n{facts}",
            system=prompt,
            model=self.model,
            schema=SECTION_SCHEMA,
            temperature=0,
            repairs=self.repairs,
            timeout=self.timeout,
        )
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            completion = asyncio.run(call)
        else:
            call.close()
            raise RuntimeError(
                "LLMGenerator.generate blocks: call refresh_guide from synchronous code "
                "(or in a thread), not from a running event loop"
            ) from None
        output = completion.output
        if not isinstance(output, dict):
            raise TypeError(f"the model's answer is not a JSON object: {output!r}")
        return output
