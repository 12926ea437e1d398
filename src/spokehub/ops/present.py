"""How stored runs are shown: bad text escaped for everyone, secrets redacted for some.

Every door that shows runs (the HTTP API, the dashboard, the CLI) reads them through
``ops.list_runs`` and ``ops.show_run``, which pass each value through ``present``:

* text the store holds but cannot be written out (a lone surrogate, a NUL; from rows written
  before input was checked, or from a step's result) is shown escaped as ``\\uXXXX``, so one
  bad row never makes a listing fail;
* unless the caller may see full values (``reveal``), the values of secret-looking keys and
  credentials inside text (``api_key=...``, ``Bearer ...``) are replaced by ``[redacted]``,
  with the same rule as the logs (``spokehub.engine.redaction``). The server reveals full
  values to tokens whose role may act on runs (``operate`` by default, configurable with
  ``SPOKEHUB_SERVER_REVEAL``); the CLI, which reads the database directly, reveals them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from spokehub.engine.events import Event
from spokehub.engine.redaction import redact
from spokehub.engine.validation import escape_invalid
from spokehub.store.base import RunRecord

__all__ = ["present", "present_event", "present_run"]


def present(value: Any, *, reveal: bool) -> Any:
    """A stored value as it may be shown."""
    value = escape_invalid(value)
    return value if reveal else redact(value)


def present_run(run: RunRecord, *, reveal: bool) -> RunRecord:
    return dataclasses.replace(
        run,
        id=escape_invalid(run.id),
        workflow=escape_invalid(run.workflow),
        input=present(run.input, reveal=reveal),
        result=present(run.result, reveal=reveal),
        error=present(run.error, reveal=reveal),
        waiting_on=present(run.waiting_on, reveal=reveal),
        parent_id=escape_invalid(run.parent_id),
        root_id=escape_invalid(run.root_id),
    )


def present_event(event: Event, *, reveal: bool) -> Event:
    return dataclasses.replace(event, data=present(event.data, reveal=reveal))
