"""Build a pattern for a platform into a deterministic set of files, content-addressed.

``build(pattern, platform)`` returns a :class:`BuildResult`: ``files`` maps each relative output
path to its bytes (including ``listing.json``, which maps every output name to its source file
and line), ``digests`` each file's SHA-256, and ``digest`` one digest over all of them. Outputs
never contain timestamps or absolute paths, so two builds of the same sources are byte-identical.

The cache key of a build is the digest of the transform's id and version, its parameters (RFC
8785 canonical JSON) and the digests of the pattern's inputs; with a :class:`BuildCache`, a
build whose key is already known is not recomputed at all, and within a process a changed input
re-renders only the tokens whose fingerprint changed (``BuildCache.fragments``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spokehub.patterns.canonical import digest, digest_bytes
from spokehub.patterns.errors import PatternError, PatternValidationError
from spokehub.patterns.hub import Pattern
from spokehub.patterns.transforms import TOKEN_PLATFORMS, Transform
from spokehub.patterns.transforms.base import (
    FragmentCache,
    Output,
    RenderContext,
    make_themes,
)

__all__ = ["PLATFORMS", "BuildCache", "BuildResult", "build", "platforms_for"]

PLATFORMS = (*TOKEN_PLATFORMS, "api-docs", "guide")


def platforms_for(pattern: Pattern) -> tuple[str, ...]:
    """The platforms a pattern can be built for."""
    if pattern.manifest.kind == "design-tokens":
        return tuple(TOKEN_PLATFORMS)
    if pattern.manifest.kind == "openapi":
        return ("api-docs", "guide")
    return ()


@dataclass(slots=True)
class BuildCache:
    """Results by cache key (in memory, and on disk when ``folder`` is set) and fragments."""

    folder: Path | None = None
    results: dict[str, dict[str, bytes]] = field(default_factory=dict)
    fragments: FragmentCache = field(default_factory=FragmentCache)

    def get(self, key: str) -> dict[str, bytes] | None:
        if key in self.results:
            return self.results[key]
        if self.folder is not None:
            path = self.folder / f"{key.partition(':')[2]}.json"
            if path.is_file():
                stored = json.loads(path.read_text(encoding="utf-8"))
                files = {k: v.encode("utf-8") for k, v in stored.items()}
                self.results[key] = files
                return files
        return None

    def put(self, key: str, files: dict[str, bytes]) -> None:
        self.results[key] = files
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{key.partition(':')[2]}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(
                json.dumps({k: v.decode("utf-8") for k, v in files.items()}, sort_keys=True),
                encoding="utf-8",
            )
            tmp.replace(path)


@dataclass(frozen=True, slots=True)
class BuildResult:
    """The files of one (pattern, platform) build and their digests."""

    pattern: str
    version: str
    platform: str
    files: dict[str, bytes]
    cache_key: str
    cached: bool

    @property
    def digests(self) -> dict[str, str]:
        return {path: digest_bytes(data) for path, data in self.files.items()}

    @property
    def digest(self) -> str:
        return digest(self.digests)

    def write(self, folder: Path) -> list[Path]:
        """Write every file under ``folder`` (replacing each atomically); return the paths."""
        written = []
        for rel, data in self.files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
            written.append(path)
        return written

    def to_dict(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "version": self.version,
            "platform": self.platform,
            "digest": self.digest,
            "cache_key": self.cache_key,
            "cached": self.cached,
            "files": self.digests,
        }


def _params(
    transform: type[Transform] | Any, pattern: Pattern, platform: str, params: dict[str, Any] | None
) -> dict[str, Any]:
    merged = dict(transform.defaults)
    for layer in (pattern.manifest.platforms.get(platform, {}), params or {}):
        for key, value in layer.items():
            if key not in merged:
                known = ", ".join(sorted(merged))
                raise PatternError(
                    f"unknown parameter {key!r} for platform {platform!r} (known: {known})"
                )
            merged[key] = value
    return merged


def build(
    pattern: Pattern,
    platform: str,
    *,
    params: dict[str, Any] | None = None,
    cache: BuildCache | None = None,
) -> BuildResult:
    """Build ``pattern`` for ``platform``; raises PatternValidationError on invalid sources."""
    if platform not in platforms_for(pattern):
        known = ", ".join(platforms_for(pattern)) or "none"
        raise PatternError(
            f"pattern {pattern.id!r} ({pattern.manifest.kind}) cannot be built "
            f"for {platform!r}; platforms: {known}"
        )
    inputs = [pattern.digest]
    if platform == "api-docs":
        from spokehub.patterns.openapi import ApiDocsTransform

        transform: Any = ApiDocsTransform
    elif platform == "guide":
        from spokehub.patterns.guide.transform import GuideTransform, lock_digest

        transform = GuideTransform
        inputs.append(lock_digest(pattern.root))  # the accepted sections are an input too
    else:
        transform = TOKEN_PLATFORMS[platform]
    merged = _params(transform, pattern, platform, params)
    key = digest(
        {
            "transform": f"{transform.id}@{transform.version}",
            "params": merged,
            "inputs": inputs,
        }
    )
    cache = cache if cache is not None else BuildCache()
    found = cache.get(key)
    if found is not None:
        return BuildResult(pattern.id, pattern.version, platform, found, key, True)
    problems = [d for d in pattern.validate() if d.severity == "error"]
    if problems:
        raise PatternValidationError(problems)
    ctx = RenderContext(
        pattern_id=pattern.id,
        version=pattern.version,
        source_digest=pattern.digest,
        transform=f"{transform.id}@{transform.version}",
        params=merged,
        params_digest=digest(merged),
        themes=make_themes(pattern.token_sets()) if platform in TOKEN_PLATFORMS else [],
        cache=cache.fragments,
    )
    if platform in TOKEN_PLATFORMS:
        outputs = transform().render(ctx)
    else:
        outputs = transform(pattern.root).render_spec(ctx, pattern.document())
    files = {o.path: o.text.encode("utf-8") for o in sorted(outputs, key=lambda o: o.path)}
    files["listing.json"] = _listing(pattern, platform, outputs, files)
    cache.put(key, files)
    return BuildResult(pattern.id, pattern.version, platform, files, key, False)


def _listing(
    pattern: Pattern, platform: str, outputs: list[Output], files: dict[str, bytes]
) -> bytes:
    body: dict[str, Any] = {}
    for output in sorted(outputs, key=lambda o: o.path):
        names = {}
        for name, token in output.names:
            pos = token.position
            names[name] = {"token": token.name, "file": pos.file, "line": pos.line}
        body[output.path] = {"digest": digest_bytes(files[output.path]), "names": names}
    listing = {
        "pattern": pattern.id,
        "version": pattern.version,
        "platform": platform,
        "source": pattern.digest,
        "outputs": body,
    }
    return _pretty(listing).encode("utf-8")


def _pretty(listing: dict[str, Any]) -> str:
    """Indented JSON with one line per output name (the indenting encoder is pure Python and
    too slow for tens of thousands of names; the compact one is C)."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    head = ",\n".join(f"  {dump(k)}: {dump(v)}" for k, v in listing.items() if k != "outputs")
    outputs = []
    for path, entry in listing["outputs"].items():
        names = ",\n".join(f"        {dump(n)}: {dump(v)}" for n, v in entry["names"].items())
        body = f"{{\n{names}\n      }}" if names else "{}"
        outputs.append(
            f'    {dump(path)}: {{\n      "digest": {dump(entry["digest"])},\n'
            f'      "names": {body}\n    }}'
        )
    return "{\n" + head + ',\n  "outputs": {\n' + ",\n".join(outputs) + "\n  }\n}\n"
