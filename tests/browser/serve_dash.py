"""Serve the dashboard app with the test workflows, configured like ``spokehub serve``.

Used by the browser tests while ``create_app`` does not mount the dashboard itself; once it
does, ``with_dashboard`` adds nothing and ``spokehub serve`` is used directly (conftest).

    python -m tests.browser.serve_dash PORT   # env: SPOKEHUB_DATABASE_URL, SPOKEHUB_SERVER_*
"""

from __future__ import annotations

import sys

import uvicorn

from spokehub.server.app import create_app_from_env
from tests.browser import dash_app  # noqa: F401 - registers the workflows the worker runs
from tests.browser.live_server import with_dashboard

if __name__ == "__main__":
    app = with_dashboard(create_app_from_env())
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
