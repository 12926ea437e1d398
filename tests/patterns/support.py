"""Helpers for the pattern tests: the fixture hub, copied into a temporary folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "patterns"
HUB = FIXTURES / "hub"


def copy_hub(tmp: Path) -> Path:
    target = tmp / "hub"
    shutil.copytree(HUB, target)
    return target


def edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")
