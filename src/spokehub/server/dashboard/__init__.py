"""The web dashboard under ``/ui``: runs, a run's timeline, approvals, queues, SLOs.

Server-rendered HTML (Jinja2) that works without JavaScript; a small script refreshes the
runs table and the run page when the event stream (``/ui/events``) reports a change.
Every route declares ``require(permission)`` or ``public(reason)`` (see ``server.auth``).
"""

from fastapi import APIRouter

from spokehub.server.dashboard import actions, integrations_page, live, pages, session

__all__ = ["router"]

router = APIRouter()
router.include_router(session.router)
router.include_router(pages.router)
router.include_router(actions.router)
router.include_router(live.router)
router.include_router(integrations_page.router)
