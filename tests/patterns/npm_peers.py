"""Style Dictionary 5 and Terrazzo 2 from npm, installed once into a cache folder.

Used by the cross-check test and by ``benchmarks/patterns_bench.py`` as reference
implementations. ``ensure_peers`` returns the folder, or raises ``PeersUnavailable`` with the
reason (no ``npm``/``node``, or the registry could not be reached), which callers turn into a
skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PACKAGES = (
    "style-dictionary@5",
    "@terrazzo/cli@2",
    "@terrazzo/plugin-css@2",
    "@terrazzo/plugin-js@2",
)


class PeersUnavailable(RuntimeError):
    pass


def peers_folder() -> Path:
    default = Path.home() / ".cache" / "spokehub" / "npm-peers"
    return Path(os.environ.get("SPOKEHUB_NPM_PEERS", default))


def ensure_peers(folder: Path | None = None) -> Path:
    folder = folder or peers_folder()
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise PeersUnavailable("npm/node are not installed (apt-get install nodejs npm)")
    marker = folder / "node_modules" / "style-dictionary" / "package.json"
    terrazzo = folder / "node_modules" / ".bin" / "tz"
    if marker.is_file() and terrazzo.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"name": "spokehub-npm-peers", "private": true}\n')
    try:
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
            cwd=folder,
            check=True,
            capture_output=True,
            timeout=300,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        tail = getattr(exc, "stderr", b"") or b""
        raise PeersUnavailable(
            f"npm install failed (registry unreachable?): {tail.decode(errors='replace')[-300:]}"
        ) from None
    return folder


SD_SCRIPT = Path(__file__).with_name("sd-build.mjs")


def run_style_dictionary(
    peers: Path, source: Path, out: Path, platforms: str, more: tuple[tuple[Path, Path], ...] = ()
) -> None:
    """Run Style Dictionary 5 on every ``*.json`` in ``source`` (and more folders), in one
    node process."""
    script = peers / "sd-build.mjs"  # next to node_modules so that imports resolve
    shutil.copy(SD_SCRIPT, script)
    pairs = ",".join(f"{s}:{o}" for s, o in ((source, out), *more))
    subprocess.run(
        ["node", str(script), pairs, platforms],
        cwd=peers,
        check=True,
        capture_output=True,
        timeout=600,
    )
