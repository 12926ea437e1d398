"""The ArtifactSource seam: where a release's desired resources for each target come from.

A source answers two questions: "what is release R?" (``release_digest``) and "what should
target T hold for release R, given these transforms?" (``render``, ``{key: bytes}``). The
patterns layer provides DTCG/OpenAPI sources; any build output folder works through the
built-in ``files`` source; Python sources are named ``module:attr`` in the Distribution's
``spec.source.use`` and built with ``attr(root=HUB_FOLDER, **spec.source.with)``.
A source may also offer ``check(use, params) -> (field, message) | None`` (field ``use`` or
``with``): hub validation calls it for every transform of the Distribution, so a bad transform
is refused before anything is applied, with its file and line.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from spokehub.distribution.errors import DistributionError


@dataclass(frozen=True, slots=True)
class TargetView:
    """What a source may know about a target."""

    name: str
    adapter: str
    labels: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "adapter": self.adapter,
            "labels": self.labels,
            "config": self.config,
        }


@dataclass(frozen=True, slots=True)
class TransformStep:
    """One transform selected for a target (``when`` already evaluated), in dependency order."""

    name: str
    use: str
    params: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class ArtifactSource(Protocol):
    def release_digest(self, release: str) -> str:
        """The digest of a release; raise ``DistributionError`` when it does not exist."""
        ...

    def render(
        self, release: str, target: TargetView, transforms: Sequence[TransformStep]
    ) -> dict[str, bytes]:
        """The resources ``target`` should hold for ``release``, by stable key."""
        ...


class UnknownRelease(DistributionError):
    code = "release_not_found"


class FilesSource:
    """Pre-built files: ``with.path`` is a template like ``build/{release}/{target.name}``."""

    def __init__(self, root: Path, path: str = "releases/{release}/{target.name}") -> None:
        self.root = root
        self.template = path

    def _release_root(self, release: str) -> Path:
        head = self.template.split("{target", 1)[0]
        return self.root / head.format(release=release)

    def release_digest(self, release: str) -> str:
        base = self._release_root(release)
        if not base.is_dir():
            raise UnknownRelease(f"release {release!r} not found: {base} does not exist")
        # Names, sizes and modification times: cheap on large build folders, and any rebuild
        # that changes a file changes the digest. Resource digests stay content digests.
        h = hashlib.sha256()
        for p in sorted(base.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(
                    f"{p.relative_to(base).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode()
                )
        return "sha256:" + h.hexdigest()

    def render(
        self, release: str, target: TargetView, transforms: Sequence[TransformStep]
    ) -> dict[str, bytes]:
        folder = str(self.root / _format(self.template, release=release, target=target.as_dict()))
        out: dict[str, bytes] = {}
        for here, _, names in os.walk(folder):
            rel = os.path.relpath(here, folder).replace(os.sep, "/")
            for name in names:
                with open(os.path.join(here, name), "rb") as fh:
                    out[name if rel == "." else f"{rel}/{name}"] = fh.read()
        return dict(sorted(out.items()))


class _Dotted(string.Formatter):
    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        value: Any = kwargs
        for part in field_name.split("."):
            value = value[part] if isinstance(value, Mapping) else getattr(value, part)
        return value, field_name


def _format(template: str, **values: Any) -> str:
    return _Dotted().format(template, **values)


def load_source(root: Path, use: str, params: Mapping[str, Any]) -> ArtifactSource:
    """Build the source a Distribution names (``files``, ``patterns`` or ``module:attr``)."""
    factory: Any
    if use == "files":
        factory = FilesSource
    elif use == "patterns":
        from spokehub.distribution.toolchain import PatternsSource

        factory = PatternsSource
    else:
        module, _, attr = use.partition(":")
        if not module or not attr:
            raise DistributionError(
                f"source {use!r}: use 'files', 'patterns' or 'package.module:factory'"
            )
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise DistributionError(f"source {use!r} cannot be imported: {exc}") from exc
    try:
        source = factory(root=root, **dict(params))
    except TypeError as exc:  # a `with` key the source does not take
        raise DistributionError(f"source {use!r}: bad 'with' parameters: {exc}") from exc
    if not isinstance(source, ArtifactSource):
        raise DistributionError(f"source {use!r} has no release_digest() and render()")
    return source
