"""Content pipeline: draft a post, wait for an editor's approval, publish to every channel at once.

    spokehub run examples/content_pipeline.py:content_pipeline --input '{"topic": "Sagas"}'
    spokehub approve RUN_ID --comment "ship it"      # or: spokehub reject RUN_ID --comment "..."

With ``"down_channels": ["newsletter"]`` that channel fails after its retries: the run fails
and the channels already published are unpublished, then the draft is discarded.

The CMS and the channels are simulated by ``FakeService``: every call is a JSON file under
``.spokehub/example-effects/`` (or ``$SPOKEHUB_EXAMPLE_EFFECTS``) named by the step's
idempotency key, so a retried call returns the first answer instead of acting twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from spokehub import RetryPolicy, approval, step, step_context, workflow

DAY = 24 * 3600.0


class Draft(BaseModel):
    slug: str
    title: str
    body: str
    tags: list[str]


class Publication(BaseModel):
    channel: str
    url: str


class Published(BaseModel):
    slug: str
    approved_by: str | None
    editor_comment: str | None
    publications: list[Publication]


class ChannelDown(Exception):
    """The channel's API is unavailable; a later attempt may succeed."""


class FakeService:
    """A remote API stand-in: one JSON file per call, keyed by the caller's idempotency key."""

    def __init__(self, name: str) -> None:
        self.name = name

    def call(self, action: str, key: str, request: dict[str, Any]) -> dict[str, Any]:
        folder = Path(os.environ.get("SPOKEHUB_EXAMPLE_EFFECTS", ".spokehub/example-effects"))
        path = folder / self.name / f"{action}-{key.replace(':', '_')}.json"
        if not path.exists():  # a repeated key acts no more: the first call's file stands
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                json.dumps({"action": action, "key": key, "request": request}, indent=2)
            )
        return request


cms = FakeService("cms")
channels_api = FakeService("channels")


async def discard_draft(draft: Draft, topic: str) -> None:
    cms.call("discard", step_context().idempotency_key, {"slug": draft.slug})


async def unpublish(
    publication: Publication, draft: Draft, channel: str, simulate_outage: bool = False
) -> None:
    key = step_context().idempotency_key
    channels_api.call(f"unpublish-{channel}", key, publication.model_dump())


@step(compensate=discard_draft)
async def write_draft(topic: str) -> Draft:
    """A deterministic local writer: the same topic always gives the same draft."""
    slug = re.sub(r"[^a-z0-9]+", "-", topic.lower()).strip("-")
    words = [w for w in re.findall(r"[a-z0-9]+", topic.lower()) if len(w) > 3]
    draft = Draft(
        slug=slug,
        title=f"{topic}: what we learned",
        body=f"We spent a quarter on {topic.lower()}. Here is what held up in production.",
        tags=sorted(set(words))[:5],
    )
    cms.call("save-draft", step_context().idempotency_key, draft.model_dump())
    return draft


@step(retry=RetryPolicy(max_attempts=3, initial_delay=0.2), compensate=unpublish)
async def publish_to(draft: Draft, channel: str, *, simulate_outage: bool = False) -> Publication:
    if simulate_outage:
        raise ChannelDown(f"{channel} API returned 503")
    publication = Publication(channel=channel, url=f"https://{channel}.example.com/{draft.slug}")
    key = step_context().idempotency_key
    channels_api.call(f"publish-{channel}", key, publication.model_dump())
    return publication


@workflow
async def content_pipeline(
    topic: str = "Durable workflows on SQLite",
    channels: list[str] | None = None,
    down_channels: list[str] | None = None,
    review_days: float = 2.0,
) -> Published:
    """Draft, get a human's approval (rejection or silence fails the run), then publish."""
    targets = channels or ["blog", "newsletter", "linkedin"]
    draft = await write_draft(topic)
    decision = await approval(
        "editor",
        subject={"slug": draft.slug, "title": draft.title, "channels": targets},
        timeout=review_days * DAY,
    )
    down = set(down_channels or [])
    publications = await asyncio.gather(
        *(publish_to(draft, ch, simulate_outage=ch in down) for ch in targets)
    )
    return Published(
        slug=draft.slug,
        approved_by=decision.by,
        editor_comment=decision.comment,
        publications=list(publications),
    )
