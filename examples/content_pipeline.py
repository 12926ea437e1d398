"""Content ops with LLM steps: draft a blog post, classify it, get an editor's approval, write
the newsletter and social posts, and publish everywhere, within a budget.

    spokehub run examples/content_pipeline.py:content_pipeline --input '{"topic": "Sagas"}'
    spokehub approve RUN_ID --comment "ship it"      # or: spokehub reject RUN_ID --comment "..."
    spokehub runs show RUN_ID                        # the timeline, and what the LLM calls cost

Every LLM call is a durable step (``llm.complete`` with a pydantic schema): its request,
answer, tokens and cost are in the ledger, so a crash or a replay never pays for it twice.
The post's section is decided with ``decide``: when the model is unsure (confidence below
0.8, e.g. ``"topic": "Team offsite notes"``) the editor is asked first
(``spokehub approve RUN_ID --name decide:section --comment culture``). The run stops with
``BudgetExceeded`` before a call that would take it past ``budget_usd``
(try ``"budget_usd": 0.001``).

Offline by default: without ``SPOKEHUB_LLM_BASE_URL`` the writer is a scripted provider
(``spokehub.testing``) that answers deterministically, with usage and log-probabilities,
priced like a small hosted model. With ``SPOKEHUB_LLM_BASE_URL`` (and ``SPOKEHUB_LLM_MODEL``,
``SPOKEHUB_LLM_API_KEY`` for a hosted API) the same workflow calls a real model.

With ``"down_channels": ["newsletter"]`` that channel fails after its retries: the run fails
and the channels already published are unpublished, then the draft is discarded. The CMS and
the channels are simulated by ``FakeService``: every call is a JSON file under
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
from spokehub.intelligence import (
    Budget,
    ChatRequest,
    LLMConfig,
    Price,
    PriceTable,
    PromptTemplate,
    Usage,
    configure,
    decide,
    llm,
)
from spokehub.testing import Reply, ScriptedProvider, label_logprobs

DAY = 24 * 3600.0
SECTIONS = ["engineering", "product", "culture"]


class BlogPost(BaseModel):
    title: str
    body: str
    tags: list[str]


class Newsletter(BaseModel):
    subject: str
    intro: str


class SocialPost(BaseModel):
    network: str
    text: str


class SocialPosts(BaseModel):
    posts: list[SocialPost]


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
    section: str = ""
    newsletter_subject: str = ""
    social: list[str] = []
    llm_cost_usd: float = 0.0


DRAFT = PromptTemplate(
    "blog-draft@1",
    "Write a short blog post about {topic} for engineers who run workflows in production.",
    system="You are the company's technical writer. Answer in JSON.",
)
NEWSLETTER = PromptTemplate(
    "newsletter@1", "Write the newsletter subject and a two-sentence intro for: {title}"
)
SOCIAL = PromptTemplate("social@1", "Write one post per network ({networks}) announcing: {title}")


# -- the offline writer: a scripted provider that answers like a model would ------------------
def _offline_answer(request: ChatRequest) -> Reply:
    prompt = request.messages[-1]["content"]
    name = request.schema_name
    tokens = len(" ".join(m["content"] for m in request.messages)) // 4
    if name == "decision":
        return _offline_decision(prompt)
    if name == "BlogPost":
        topic = prompt.split("about ", 1)[1].split(" for engineers", 1)[0]
        words = [w for w in re.findall(r"[a-z0-9]+", topic.lower()) if len(w) > 3]
        content: Any = {
            "title": f"{topic}: what we learned",
            "body": f"We spent a quarter on {topic.lower()}. Here is what held up in production.",
            "tags": sorted(set(words))[:5],
        }
    elif name == "Newsletter":
        title = prompt.split("for: ", 1)[1]
        content = {"subject": f"This week: {title}", "intro": f"{title}. Read on."}
    else:
        title = prompt.split("announcing: ", 1)[1]
        content = {
            "posts": [
                {"network": n, "text": f"New on the blog: {title}"}
                for n in ("linkedin", "mastodon")
            ]
        }
    return Reply(content, usage=Usage(tokens, 60 + len(json.dumps(content)) // 4))


def _offline_decision(prompt: str) -> Reply:
    text = prompt.lower()
    sure = any(w in text for w in ("saga", "workflow", "sqlite", "durable", "deploy", "api"))
    label = "engineering" if sure or "offsite" not in text else "culture"
    confidence = 0.93 if sure else 0.62
    other = (1 - confidence) / 2
    content = json.dumps({"label": label, "rationale": "judged from the title and tags"})
    probs = {s: (confidence if s == label else other) for s in SECTIONS}
    return Reply(content, usage=Usage(90, 20), logprobs=label_logprobs(content, label, probs))


ONLINE = bool(os.environ.get("SPOKEHUB_LLM_BASE_URL"))
MODEL = None if ONLINE else "writer"  # online: SPOKEHUB_LLM_MODEL names the model


def setup_llm() -> None:
    """Offline: the scripted writer, priced like a small hosted model. Online: the environment."""
    if ONLINE:
        configure(LLMConfig.from_env())
        return
    writer = ScriptedProvider(default=_offline_answer)
    configure(
        LLMConfig(
            providers={"default": writer},
            models={"writer": ["offline-writer"]},
            prices=PriceTable.defaults().merged({"offline-writer": Price(0.50, 1.50)}),
        )
    )


setup_llm()


# -- the outside world ------------------------------------------------------------------------
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


async def discard_draft(draft: Draft, topic: str, post: BlogPost) -> None:
    cms.call("discard", step_context().idempotency_key, {"slug": draft.slug})


async def unpublish(
    publication: Publication, draft: Draft, channel: str, simulate_outage: bool = False
) -> None:
    key = step_context().idempotency_key
    channels_api.call(f"unpublish-{channel}", key, publication.model_dump())


@step(compensate=discard_draft)
async def write_draft(topic: str, post: BlogPost) -> Draft:
    """Save the model's post as a CMS draft (undone if the run fails later)."""
    slug = re.sub(r"[^a-z0-9]+", "-", topic.lower()).strip("-")
    draft = Draft(slug=slug, title=post.title, body=post.body, tags=post.tags)
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
    budget_usd: float = 0.05,
) -> Published:
    """Draft with an LLM, classify, get a human's approval, write the rest, publish."""
    targets = channels or ["blog", "newsletter", "linkedin"]
    budget = Budget(run=budget_usd)
    post = await llm.complete(
        DRAFT.render(topic=topic), model=MODEL, schema=BlogPost, budget=budget
    )
    draft = await write_draft(topic, post.output)
    section = await decide(
        "Which section of the blog does this post belong in?",
        labels=SECTIONS,
        context=f"{draft.title}\n\n{draft.body}\n\ntags: {', '.join(draft.tags)}",
        threshold=0.8,
        model=MODEL,
        name="section",
    )
    decision = await approval(
        "editor",
        subject={"slug": draft.slug, "title": draft.title, "channels": targets},
        timeout=review_days * DAY,
    )
    newsletter, social = await asyncio.gather(
        llm.complete(
            NEWSLETTER.render(title=draft.title), model=MODEL, schema=Newsletter, budget=budget
        ),
        llm.complete(
            SOCIAL.render(title=draft.title, networks="linkedin, mastodon"),
            model=MODEL,
            schema=SocialPosts,
            budget=budget,
        ),
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
        section=section.label,
        newsletter_subject=newsletter.output.subject,
        social=[p.text for p in social.output.posts],
        llm_cost_usd=round(post.cost + section.cost + newsletter.cost + social.cost, 8),
    )
