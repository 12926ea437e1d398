"""Poison isolation in SQL (shared by both engines): suspects, strikes and dead-lettering.

A run whose worker died is a *suspect*, not a culprit: the worker may have been killed from
outside (a deploy, a spot instance going away) or by another run beside it (the OOM killer,
a segfaulting extension). So recovering a run charges nothing; it makes the run a suspect
(``isolation = 1``, status ``waiting``, due now) whose next activation runs alone:

* ``2``: in a child process of a worker, which supervises it. Only when that child dies while
  its supervisor lives does the run take a *strike* (``strike``); if the supervisor dies too
  (an external kill of the worker), nothing is charged.
* ``3``: alone in a worker's own process (embedded runs, workflows defined in ``__main__``):
  the worker has nothing else to blame, so its death is a strike (``recover``).

At ``max_recoveries`` strikes the run is dead-lettered. An activation that ends normally
(finishes or unloads to wait) clears the suspicion. ``recoveries`` keeps counting every
recovery, charged or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from spokehub.engine.events import Event, EventKind
from spokehub.store import redaction

Conn = Any  # a DB-API connection taking ``?`` placeholders

SUSPECT, IN_CHILD, IN_PROCESS = 1, 2, 3
# After a strike the run waits before its next try alone, doubling each time: a run that
# crashes its process at once would otherwise spin through process starts.
STRIKE_BACKOFF = 0.5
MAX_BACKOFF = 60.0


class _Hooks(Protocol):
    @property
    def lock_rows(self) -> str: ...

    def _insert_events(self, conn: Conn, run_id: str, events: Sequence[Event]) -> None: ...
    def _wake(self, conn: Conn, run_id: str, now: float) -> None: ...
    def _notify(self, conn: Conn, queue: str) -> None: ...


def recover(
    store: _Hooks,
    conn: Conn,
    *,
    scope: str,
    params: Sequence[Any],
    dead: Sequence[str],
    now: float,
    max_recoveries: int | None,
) -> None:
    """Turn running runs in ``scope`` whose owner is gone (lease expired, or a dead owner)
    into suspects; one that was running alone in its worker's process takes a strike."""
    d = ",".join("?" * len(dead)) or "NULL"
    rows = conn.execute(
        "SELECT id, isolation, strikes FROM runs WHERE status = 'running' AND "
        f"(lease_expires < ? OR lease_owner IN ({d})) AND {scope}{store.lock_rows}",
        (now, *dead, *params),
    ).fetchall()
    for run_id, isolation, strikes in rows:
        charged = isolation == IN_PROCESS
        suspect(store, conn, run_id, strikes + charged, now, max_recoveries, charged=charged)


def strike(
    store: _Hooks,
    conn: Conn,
    *,
    owner: str,
    run_id: str,
    epoch: int,
    now: float,
    max_recoveries: int | None,
) -> bool:
    """The child process running ``run_id`` alone died while its supervisor (``owner``)
    lives: charge the run. False when the lease is no longer the supervisor's."""
    row = conn.execute(
        "SELECT strikes FROM runs WHERE id = ? AND lease_owner = ? AND lease_epoch = ? AND "
        f"status = 'running'{store.lock_rows}",
        (run_id, owner, epoch),
    ).fetchone()
    if row is None:
        return False
    suspect(store, conn, run_id, row[0] + 1, now, max_recoveries, charged=True)
    return True


def suspect(
    store: _Hooks,
    conn: Conn,
    run_id: str,
    strikes: int,
    now: float,
    max_recoveries: int | None,
    *,
    charged: bool,
) -> None:
    """Take the run from its (dead) owner: a suspect (due now, or after a backoff when this
    death was charged), or dead-lettered."""
    if max_recoveries is not None and strikes >= max_recoveries:
        dead_letter(store, conn, run_id, strikes, now)
        return
    due = now + min(MAX_BACKOFF, STRIKE_BACKOFF * 2 ** (strikes - 1)) if charged else now
    row = conn.execute(
        "UPDATE runs SET status = 'waiting', wake_at = ?, lease_owner = NULL, "
        "lease_expires = NULL, lease_epoch = lease_epoch + 1, isolation = ?, strikes = ?, "
        "recoveries = recoveries + 1, updated_at = ? WHERE id = ? AND status = 'running' "
        "RETURNING queue",
        (due, SUSPECT, strikes, now, run_id),
    ).fetchone()
    if row is not None:
        store._notify(conn, row[0])


def dead_letter(store: _Hooks, conn: Conn, run_id: str, strikes: int, now: float) -> None:
    """Stop recovering a run that keeps taking down the process that runs it alone."""
    error = {
        "type": "DeadLettered",
        "code": "dead_lettered",
        "message": (
            f"run {run_id!r} took down the process executing it alone {strikes} times (it "
            "was isolated after its worker died, so other runs and outside kills are not "
            "counted); it is dead-lettered so that it stops taking workers down. Find the "
            "cause in the logs of the worker processes that died, fix it, then start the "
            f"workflow again or fork the run (spokehub fork {run_id} --from-step 1)"
        ),
    }
    row = conn.execute(
        "UPDATE runs SET status = 'failed', error = ?, finished_at = ?, updated_at = ?, "
        "lease_owner = NULL, lease_expires = NULL, lease_epoch = lease_epoch + 1, "
        "wake_at = NULL, waiting_on = NULL, strikes = ? "
        "WHERE id = ? AND status = 'running' RETURNING parent_id",
        (redaction.dumps(error), now, now, strikes, run_id),
    ).fetchone()
    if row is None:
        return
    (position,) = conn.execute(
        "SELECT COALESCE(MAX(position), -1) + 1 FROM events WHERE run_id = ?", (run_id,)
    ).fetchone()
    event = Event(position, EventKind.RUN_FINISHED, now, data={"status": "failed", "error": error})
    store._insert_events(conn, run_id, [event])
    if row[0] is not None:
        store._wake(conn, row[0], now)
