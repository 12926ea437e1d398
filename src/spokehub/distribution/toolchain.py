"""``PatternsSource``: the ``ArtifactSource`` backed by the patterns toolchain (``use: patterns``).

A release is a folder ``releases/<id>/`` that is a patterns hub of its own (``patterns/*.yaml``
Pattern manifests and the sources they match), frozen when the release was cut. Its digest is
the digest of ``{pattern id: {version, digest}}``, the same pattern entries a
``PatternRelease`` document records. A Distribution picks, per target (``when``), which of
these transforms to run; their ``with`` parameters are checked before anything is applied:

* ``patterns.build`` — ``spokehub.patterns.build(pattern, platform)``; ``with``: ``platform``
  (required), ``pattern`` (default: every pattern buildable for that platform), ``into`` (a
  key prefix such as ``dist/``), ``params`` (the platform's transform parameters) and
  ``listing`` (also ship ``listing.json``; default false).
* ``patterns.entries`` — one JSON entry per token (``<prefix><name>``) with its value in every
  resolver permutation (``light``, ``dark``...): for content stores; ``with``: ``pattern``,
  ``prefix`` (default ``token/``), ``types`` (default: all).
* ``patterns.package`` — a deterministic ``<name>-<version>.tgz`` of ``package.json`` and the
  pattern's builds (``with``: ``name``, ``pattern``, ``platforms``, default ``[css]``).
* ``event.release-promoted`` — one event per release (``events/release.promoted/<release>``).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from spokehub.distribution.errors import DistributionError
from spokehub.distribution.source import TargetView, TransformStep, UnknownRelease

Rendered = dict[str, bytes]

_KNOWN: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # use -> (required, allowed)
    "patterns.build": (
        frozenset({"platform"}),
        frozenset({"platform", "pattern", "into", "params", "listing"}),
    ),
    "patterns.entries": (frozenset(), frozenset({"pattern", "prefix", "types"})),
    "patterns.package": (frozenset({"name"}), frozenset({"name", "pattern", "platforms"})),
    "event.release-promoted": (frozenset(), frozenset()),
}


class PatternsSource:
    """Render a release hub for a target with ``spokehub.patterns`` (see the module docstring)."""

    def __init__(self, root: Path, releases: str = "releases") -> None:
        from spokehub.patterns import BuildCache

        self.base = Path(root) / releases
        self.cache = BuildCache()  # keyed by transform, parameters and input digests
        self._hubs: dict[str, tuple[str, Any]] = {}
        # Plans render targets on worker threads, and a Pattern resolves its token sets lazily
        # (not thread-safe): one render at a time. The toolchain is pure Python, so the GIL
        # serialises the work anyway.
        self._lock = threading.RLock()

    def check(self, use: str, params: Mapping[str, Any]) -> tuple[str, str] | None:
        """What is wrong with one transform of a Distribution, as (``use`` or ``with``,
        message), or None; needs no release, so hub validation calls it."""
        from spokehub.patterns import PLATFORMS

        if use not in _KNOWN:
            known = ", ".join(_KNOWN)
            return "use", f"the patterns source has no transform {use!r} (known: {known})"
        required, allowed = _KNOWN[use]
        missing = sorted(required - set(params))
        if missing:
            return "with", f"{use} needs with.{missing[0]}"
        unknown = sorted(set(params) - allowed)
        if unknown:
            known = ", ".join(sorted(allowed))
            return "with", f"{use} has no parameter {unknown[0]!r} (known: {known})"
        platforms = [params["platform"]] if "platform" in params else params.get("platforms", [])
        bad = [p for p in platforms if p not in PLATFORMS]
        if bad:
            return "with", f"unknown platform {bad[0]!r}; platforms: {', '.join(PLATFORMS)}"
        return None

    def _hub(self, release: str) -> tuple[str, Any]:
        from spokehub.patterns import PatternNotFound, digest, load_hub

        folder = self.base / release
        try:
            hub = load_hub(folder)
        except PatternNotFound as exc:
            raise UnknownRelease(f"release {release!r} not found: {exc}") from exc
        patterns = {
            pid: {"version": p.version, "digest": p.digest}
            for pid, p in sorted(hub.patterns.items())
        }
        found = digest({"kind": "PatternRelease", "patterns": patterns})
        cached = self._hubs.get(release)
        if cached is not None and cached[0] == found:
            return cached  # keep the resolved token sets of an unchanged release
        if hub.diagnostics:
            raise DistributionError(_problems(f"release {release!r}", hub.diagnostics))
        self._hubs[release] = (found, hub)
        return found, hub

    def release_digest(self, release: str) -> str:
        with self._lock:
            return self._hub(release)[0]

    def render(
        self, release: str, target: TargetView, transforms: Sequence[TransformStep]
    ) -> dict[str, bytes]:
        with self._lock:
            return self._render(release, transforms)

    def _render(self, release: str, transforms: Sequence[TransformStep]) -> dict[str, bytes]:
        _, hub = self._hub(release)
        out: Rendered = {}
        for step in transforms:
            problem = self.check(step.use, step.params)
            if problem:
                raise DistributionError(f"transform {step.name}: {problem[1]}")
            for key, data in _RENDERERS[step.use](self, hub, release, step.params).items():
                if key in out:
                    raise DistributionError(
                        f"transform {step.name} writes {key!r} that another transform wrote: "
                        "give each a different 'into' or 'pattern'"
                    )
                out[key] = data
        return dict(sorted(out.items()))

    def build(self, pattern: Any, platform: str, params: Mapping[str, Any] | None = None) -> Any:
        from spokehub.patterns import PatternError, PatternValidationError, build

        try:
            return build(pattern, platform, params=dict(params or {}), cache=self.cache)
        except PatternValidationError as exc:
            raise DistributionError(_problems(f"pattern {pattern.id!r}", exc.diagnostics)) from exc
        except (PatternError, ValueError) as exc:
            raise DistributionError(
                f"pattern {pattern.id!r}, platform {platform!r}: {exc}"
            ) from exc


def _problems(what: str, diagnostics: Sequence[Any]) -> str:
    shown = "; ".join(str(d) for d in diagnostics[:5])
    more = f" (+{len(diagnostics) - 5} more)" if len(diagnostics) > 5 else ""
    return f"{what} is not valid: {shown}{more}"


def _chosen(hub: Any, params: Mapping[str, Any], platform: str | None) -> list[Any]:
    """The patterns a transform applies to: the named one, or every one that fits."""
    from spokehub.patterns import PatternError, platforms_for

    if "pattern" in params:
        try:
            return [hub.get(params["pattern"])]
        except PatternError as exc:
            raise DistributionError(str(exc)) from exc
    fits = [
        p
        for _, p in sorted(hub.patterns.items())
        if (platform in platforms_for(p) if platform else p.manifest.kind == "design-tokens")
    ]
    if not fits:
        raise DistributionError(f"no pattern of the release can be built for {platform!r}")
    return fits


def _build(src: PatternsSource, hub: Any, release: str, params: Mapping[str, Any]) -> Rendered:
    platform = params["platform"]
    into = str(params.get("into", ""))
    out: Rendered = {}
    for pattern in _chosen(hub, params, platform):
        result = src.build(pattern, platform, params.get("params"))
        for path, data in result.files.items():
            if path == "listing.json" and not params.get("listing", False):
                continue
            out[into + path] = data
    return out


def _entries(src: PatternsSource, hub: Any, release: str, params: Mapping[str, Any]) -> Rendered:
    from spokehub.patterns.transforms.values import css_value, kebab

    prefix = str(params.get("prefix", "token/"))
    types = params.get("types")
    out: Rendered = {}
    for pattern in _chosen(hub, params, None):
        perms = pattern.token_sets()
        bad = [d for _, ts in perms for d in ts.errors]
        if bad:
            raise DistributionError(_problems(f"pattern {pattern.id!r}", bad))
        default = perms[0][1].tokens
        for name, token in sorted(default.items()):
            if types is not None and token.type not in types:
                continue
            body: dict[str, Any] = {"name": name}
            for inputs, tokens in perms:
                label = "-".join(inputs.values()) or "value"
                other = tokens.tokens.get(name, token)
                body[label] = css_value(str(other.type), other.value)
            if token.deprecated is not False:
                body["deprecated"] = token.deprecated
            out[prefix + kebab(token.path)] = json.dumps(body, sort_keys=True).encode()
    return out


def _package(src: PatternsSource, hub: Any, release: str, params: Mapping[str, Any]) -> Rendered:
    pattern = _chosen(hub, params, None)[0]
    name = str(params["name"])
    files = {
        "package.json": json.dumps(
            {"name": name, "version": pattern.version, "spokehub": {"pattern": pattern.id}},
            indent=2,
            sort_keys=True,
        ).encode()
        + b"\n"
    }
    for platform in params.get("platforms", ["css"]):
        for path, data in src.build(pattern, platform).files.items():
            files[f"{platform}/{path}"] = data
    return {f"{name}-{pattern.version}.tgz": tarball(files)}


def _event(src: PatternsSource, hub: Any, release: str, params: Mapping[str, Any]) -> Rendered:
    body = {
        "type": "release.promoted",
        "release": release,
        "digest": src.release_digest(release),
        "patterns": {pid: p.version for pid, p in sorted(hub.patterns.items())},
    }
    return {f"events/release.promoted/{release}": json.dumps(body, sort_keys=True).encode()}


_RENDERERS: dict[str, Callable[[PatternsSource, Any, str, Mapping[str, Any]], Rendered]] = {
    "patterns.build": _build,
    "patterns.entries": _entries,
    "patterns.package": _package,
    "event.release-promoted": _event,
}


def tarball(files: Mapping[str, bytes]) -> bytes:
    """A deterministic .tgz (fixed mtimes and owners, sorted members under ``package/``)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(f"package/{name}")
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), mtime=0)
