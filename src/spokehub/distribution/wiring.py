"""From manifests to live objects: a distribution's targets, adapters, transforms and source."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spokehub.distribution.adapters.base import BaseAdapter, load_adapter_class
from spokehub.distribution.cel import compile_cel
from spokehub.distribution.errors import DistributionError
from spokehub.distribution.manifests import Hub, Manifest
from spokehub.distribution.model import DesiredResource
from spokehub.distribution.plan import TargetFacts
from spokehub.distribution.selectors import matches
from spokehub.distribution.source import ArtifactSource, TargetView, TransformStep, load_source
from spokehub.governance.errors import SecretNotFound
from spokehub.governance.redaction import REDACTOR
from spokehub.governance.secrets import secret


def resolve_credentials(ref: str | None, root: Path) -> str | None:
    """A target's ``credentialsRef`` to the secret's value, resolved through the governance
    secrets layer so the value is masked wherever spokehub writes text (logs, the ledger,
    the audit trail, errors):

    * ``secret:NAME`` (or ``secret://NAME``): the configured secret providers (the
      environment, ``SPOKEHUB_SECRETS_FILE``, or any ``SecretProvider``);
    * ``env:NAME``: the environment variable;
    * ``file:path``: a file (relative to the hub), stripped.
    """
    if not ref:
        return None
    scheme, _, name = ref.partition(":")
    if scheme == "secret":
        try:
            return secret(name.removeprefix("//"))
        except SecretNotFound as exc:
            raise DistributionError(f"credentials {ref}: {exc}") from exc
    if scheme == "env":
        value = os.environ.get(name)
        if value is None:
            raise DistributionError(f"credentials {ref}: environment variable {name} is not set")
        return _masked(ref, value)
    path = (root / name) if not os.path.isabs(name) else Path(name)
    try:
        return _masked(ref, path.read_text().strip())
    except OSError as exc:
        raise DistributionError(f"credentials {ref}: cannot read {path} ({exc.strerror})") from exc


def _masked(ref: str, value: str) -> str:
    """Hand the value to the redactor (from now on it never appears in what spokehub writes)."""
    try:
        REDACTOR.add(ref, value)
    except ValueError as exc:  # too short to mask reliably
        raise DistributionError(f"credentials {ref}: {exc}") from exc
    return value


def target_view(t: Manifest) -> TargetView:
    return TargetView(t.name, t.spec["adapter"], dict(t.labels), dict(t.spec.get("config", {})))


def order_transforms(dist: Manifest) -> list[dict[str, Any]]:
    """Transforms in dependency order (``needs``); a cycle is a ManifestError with its line."""
    items = list(dist.spec.get("transforms", []))
    names = {(t.get("name") or t["use"]): i for i, t in enumerate(items)}
    order: list[int] = []
    state: dict[int, int] = {}  # 1 visiting, 2 done

    def visit(i: int, trail: list[str]) -> None:
        if state.get(i) == 2:
            return
        name = items[i].get("name") or items[i]["use"]
        if state.get(i) == 1:
            cycle = " -> ".join([*trail[trail.index(name) :], name])
            raise dist.error(f"transforms form a cycle: {cycle}", f"/spec/transforms/{i}/needs")
        state[i] = 1
        for need in items[i].get("needs", []):
            if need not in names:
                raise dist.error(
                    f"transform {name!r} needs unknown {need!r}", f"/spec/transforms/{i}"
                )
            visit(names[need], [*trail, name])
        state[i] = 2
        order.append(i)

    for i in range(len(items)):
        visit(i, [])
    return [items[i] for i in order]


@dataclass
class DistContext:
    """Everything needed to plan or apply one distribution (built once per process/step)."""

    hub: Hub
    dist: Manifest
    source: ArtifactSource
    _adapters: dict[str, BaseAdapter] = field(default_factory=dict)
    _by_name: dict[str, Manifest] | None = None
    _digests: dict[str, str] = field(default_factory=dict)

    def release_digest(self, release: str) -> str:
        """The source's digest of ``release``, once per context (releases are immutable)."""
        found = self._digests.get(release)
        if found is None:
            found = self._digests[release] = self.source.release_digest(release)
        return found

    @classmethod
    def build(cls, hub: Hub, distribution: str) -> DistContext:
        dist = hub.get("Distribution", distribution)
        src = dist.spec["source"]
        try:
            source = load_source(hub.root, src["use"], src.get("with", {}))
        except DistributionError as exc:
            raise dist.error(str(exc), "/spec/source/use") from exc
        return cls(hub, dist, source)

    @property
    def name(self) -> str:
        return self.dist.name

    @property
    def owner(self) -> str:
        return f"spokehub/{self.dist.name}"

    def targets(self) -> list[Manifest]:
        selector = (self.dist.spec.get("targets") or {}).get("selector")
        return [t for _, t in sorted(self.hub.targets.items()) if matches(selector, t.labels)]

    def target(self, name: str) -> Manifest:
        if self._by_name is None:
            self._by_name = {t.name: t for t in self.targets()}
        found = self._by_name.get(name)
        if found is not None:
            return found
        raise DistributionError(f"target {name!r} is not part of distribution {self.name!r}")

    def adapter(self, name: str, endpoint: int | None = None) -> BaseAdapter:
        """The target's adapter; ``endpoint`` picks one of its ``alternatives`` instead."""
        cache = name if endpoint is None else f"{name}#{endpoint}"
        found = self._adapters.get(cache)
        if found is None:
            t = self.target(name)
            creds = resolve_credentials(t.spec.get("credentialsRef"), self.hub.root)
            config = dict(t.spec.get("config", {}))
            if endpoint is not None:
                config.update(t.spec.get("alternatives", [])[endpoint])
            config = _absolute_paths(config, self.hub.root)
            found = load_adapter_class(t.spec["adapter"])(
                config, credentials=creds, owner=self.owner
            )
            self._adapters[cache] = found
        return found

    def transforms_for(self, target: Manifest) -> list[TransformStep]:
        view = {"target": target_view(target).as_dict()}
        chosen = []
        for t in order_transforms(self.dist):
            when = t.get("when")
            if when and not compile_cel(when, ["target"]).check(view):
                continue
            chosen.append(
                TransformStep(t.get("name") or t["use"], t["use"], dict(t.get("with", {})))
            )
        return chosen

    def desired(
        self, release: str, target: Manifest, endpoint: int | None = None
    ) -> dict[str, DesiredResource]:
        adapter = self.adapter(target.name, endpoint)
        files = self.source.render(release, target_view(target), self.transforms_for(target))
        return {
            key: DesiredResource(key, adapter.canonicalize(key, data), _media(key))
            for key, data in sorted(files.items())
        }

    def facts(self, target: Manifest, endpoint: int | None = None) -> TargetFacts:
        adapter = self.adapter(target.name, endpoint)
        caps = adapter.capabilities()
        protect = (target.spec.get("protect") or {}).get("prune", "allow")
        return TargetFacts(
            owner=self.owner,
            can_read=caps["read"],
            can_delete=caps["delete"] and protect != "deny",
            immutable=bool(getattr(adapter, "immutable", False)),
            prune=bool(self.dist.spec.get("prune", False)),
            prune_needs_approval=protect == "confirm",
        )

    def rollout(self) -> Manifest | None:
        name = self.dist.spec.get("rollout")
        return self.hub.get("Rollout", name) if name else None

    def policies(self) -> list[Manifest]:
        return [self.hub.get("Policy", n) for n in self.dist.spec.get("policies", [])]


_MEDIA = {
    ".css": "text/css",
    ".swift": "text/x-swift",
    ".xml": "application/xml",
    ".md": "text/markdown",
    ".json": "application/json",
    ".tgz": "application/gzip",
}


def _media(key: str) -> str:
    return _MEDIA.get(Path(key).suffix, "application/octet-stream")


def _absolute_paths(config: dict[str, Any], root: Path) -> dict[str, Any]:
    """Relative ``path`` settings are relative to the hub folder, not the current directory."""
    path = config.get("path")
    if isinstance(path, str) and not os.path.isabs(path):
        config["path"] = str(root / path)
    return config


def wave_targets(
    ctx: DistContext, selector: Mapping[str, Any] | None, done: Sequence[str] = ()
) -> list[Manifest]:
    return [t for t in ctx.targets() if matches(selector, t.labels) and t.name not in done]
