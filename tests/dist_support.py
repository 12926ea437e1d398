"""Helpers for the distribution tests: a demo-shaped hub, a real-clock client, servers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spokehub import Client, Settings
from spokehub.distribution import service
from spokehub.distribution.demo.cms import CmsServer
from spokehub.distribution.demo.hubfiles import manifests, write_release
from spokehub.distribution.demo.scenario import DIST, SECRET, prepare
from spokehub.distribution.demo.webhook_sink import WebhookSink


def real_client(db_url: str) -> Client:
    """Rollouts use durable timers between measurements: they need a clock that moves."""
    return Client(settings=Settings(database_url=db_url, poll_interval=0.05))


@contextmanager
def demo_hub(
    tmp: Path, *, edit: dict[str, str] | None = None
) -> Iterator[tuple[Path, CmsServer, WebhookSink]]:
    """The demo's hub with release r1 written; ``edit`` replaces text in the manifests."""
    hub = tmp / "hub"
    prepare(hub)
    with CmsServer(hub / "services" / "cms.json") as cms, WebhookSink(SECRET) as sink:
        text = manifests(cms.url, sink.url)
        for old, new in (edit or {}).items():
            assert old in text, old
            text = text.replace(old, new)
        (hub / "manifests").mkdir(exist_ok=True)
        (hub / "manifests" / "hub.yaml").write_text(text)
        yield hub, cms, sink


def release(hub: Path, name: str, version: str, accent: list[float] | None = None) -> None:
    write_release(hub, name, version, accent=accent)


def rollout(
    client: Client, hub: Path, rel: str, *, approve: bool = True, **kw: Any
) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        handle = await service.start_rollout(client, hub, DIST, rel, **kw)

        async def gate(name: str, run: Any) -> bool:
            return approve

        run = await service.drive(client, handle.id, gate)
        assert isinstance(run.result, dict), run
        return run.result

    return asyncio.run(go())


AUTO_GATE = {"gate: manual": "gate: auto"}
# The demo Distribution's transform that builds the API reference for the docs target.
API_DOCS = (
    "    - name: api-docs\n      use: patterns.build\n"
    "      when: \"target.labels.platform == 'docs'\"\n"
    "      with: {platform: api-docs, into: docs/api/}\n"
)
