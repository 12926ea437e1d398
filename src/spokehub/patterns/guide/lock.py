"""``llm.lock.json``: the accepted generated sections, pinned so rebuilds are offline and exact.

Each accepted section records the input digest of its skeleton facts, the prompt digest, the
model, the output and the output digest. A section generated for new inputs waits under
``pending`` (with its grounding problems, if any) until a human approves it; only then does it
replace the accepted one. The file is written with sorted keys so it diffs cleanly in review.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spokehub.patterns.errors import PatternError

__all__ = ["LOCK_NAME", "GuideLock", "LockedSection"]

LOCK_NAME = "llm.lock.json"


@dataclass(frozen=True, slots=True)
class LockedSection:
    """One generated section and where it came from."""

    input_digest: str
    prompt_digest: str
    model: str
    output: dict[str, Any]
    output_digest: str
    problems: tuple[str, ...] = ()
    approved_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "inputDigest": self.input_digest,
            "promptDigest": self.prompt_digest,
            "model": self.model,
            "output": self.output,
            "outputDigest": self.output_digest,
        }
        if self.problems:
            out["problems"] = list(self.problems)
        if self.approved_by:
            out["approvedBy"] = self.approved_by
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockedSection:
        return cls(
            data["inputDigest"],
            data["promptDigest"],
            data["model"],
            data["output"],
            data["outputDigest"],
            tuple(data.get("problems", ())),
            data.get("approvedBy"),
        )


@dataclass(slots=True)
class GuideLock:
    """Accepted and pending sections per pattern id."""

    accepted: dict[str, dict[str, LockedSection]] = field(default_factory=dict)
    pending: dict[str, dict[str, LockedSection]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> GuideLock:
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise PatternError(
                f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                "restore it from version control"
            ) from None
        lock = cls()
        for attr in ("accepted", "pending"):
            table = getattr(lock, attr)
            for pid, sections in (data.get(attr) or {}).items():
                table[pid] = {sid: LockedSection.from_dict(s) for sid, s in sections.items()}
        return lock

    def to_json(self) -> str:
        data = {
            "version": 1,
            "accepted": {
                p: {s: v.to_dict() for s, v in secs.items()}
                for p, secs in self.accepted.items()
                if secs
            },
            "pending": {
                p: {s: v.to_dict() for s, v in secs.items()}
                for p, secs in self.pending.items()
                if secs
            },
        }
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)

    def approve(self, pattern_id: str, section_id: str, approved_by: str) -> LockedSection:
        """Move a pending section (that passed grounding) to accepted."""
        pending = self.pending.get(pattern_id, {}).get(section_id)
        if pending is None:
            raise PatternError(
                f"no pending section {section_id!r} for {pattern_id!r}; see "
                "`spokehub patterns guide` for what is pending"
            )
        if pending.problems:
            raise PatternError(
                f"section {section_id!r} failed its grounding checks and cannot "
                "be approved: " + "; ".join(pending.problems)
            )
        accepted = LockedSection(
            pending.input_digest,
            pending.prompt_digest,
            pending.model,
            pending.output,
            pending.output_digest,
            (),
            approved_by,
        )
        self.accepted.setdefault(pattern_id, {})[section_id] = accepted
        del self.pending[pattern_id][section_id]
        return accepted
