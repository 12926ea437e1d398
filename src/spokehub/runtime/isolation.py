"""Running suspect runs alone, in child processes their worker supervises (poison isolation).

A run whose worker died is a suspect (``store/isolation.py``). A worker claims suspects
(``isolation=2``) and hands each to an *isolation process* of its own: a child started with
``python -m spokehub.runtime.isolation`` that executes one run at a time, each under the
worker's lease (owner name and epoch, so every commit stays fenced), and heartbeats it. A
worker keeps up to ``Worker.isolation_slots`` of them and reuses them, so a burst of
suspects (after a worker with many runs died) does not pay a process start each. Children
are killed with their worker (``PR_SET_PDEATHSIG``), so an outside kill of the worker never
leaves a second process executing a run.

* The child answers: the activation ended (finished, unloaded to wait, or gave the run back).
* The child died while its worker lives (a signal, ``os._exit``, a segfault, the OOM killer):
  the run took down the process that ran it alone, so it takes a strike (``Store.strike``);
  at ``max_recoveries`` strikes it is dead-lettered.
* The worker stops: it kills its children and gives their runs back, still suspects.

Children need the workflow importable by module name, and Linux (for the parent-death
signal); other suspects run alone in the worker's own process instead (``isolation=3``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import json
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from spokehub.errors import StoreError
from spokehub.runtime.definitions import REGISTRY
from spokehub.store.base import Claimed

if TYPE_CHECKING:
    from spokehub.runtime.definitions import Workflow
    from spokehub.runtime.worker import Worker

log = logging.getLogger("spokehub.worker")

TEMPFAIL = 75  # the child could not start the run (store unavailable, lease gone): no strike
NOIMPORT = 76  # the child cannot import the workflow's module: run its suspects in-process
_PR_SET_PDEATHSIG = 1


def spawnable(wf: Workflow[..., Any]) -> bool:
    """Can a child process import this workflow by its module name?"""
    module = getattr(wf.fn, "__module__", "__main__")
    return sys.platform.startswith("linux") and module not in ("__main__", "__mp_main__")


class _Child:
    """One isolation process: a JSON line in per run, its exit status as a line out."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, worker: Worker) -> _Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "spokehub.runtime.isolation",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        child = cls(proc)
        await child._send(
            {
                "settings": dataclasses.asdict(worker.client.settings),
                "path": sys.path,
                "parent": os.getpid(),
            }
        )
        return child

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def execute(self, spec: dict[str, Any]) -> int | None:
        """Run one suspect; its status, or None when the process died meanwhile."""
        assert self.proc.stdout is not None
        try:
            await self._send(spec)
            line = await self.proc.stdout.readline()
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        if not line:
            await self.proc.wait()
            return None
        return int(line)

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()


class Isolator:
    """A worker's isolation processes: started on demand, reused, at most ``slots``."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()

    async def supervise(self, claimed: Claimed) -> None:
        """Run ``claimed`` alone in an isolation process; charge it if that process dies."""
        worker, run = self.worker, claimed.run
        spec = {
            "run_id": run.id,
            "epoch": claimed.epoch,
            "owner": worker.owner,
            "module": REGISTRY.workflow(run.workflow).fn.__module__,
        }
        child = self._idle.pop() if self._idle else await _Child.start(worker)
        self._busy.add(child)
        log.info("run %s is a suspect; running it alone in process %d", run.id, child.proc.pid)
        try:
            status = await child.execute(spec)
        except asyncio.CancelledError:  # the worker stops: the run stays a suspect
            await child.kill()
            await self._give_back(claimed)
            raise
        finally:
            self._busy.discard(child)
        if status == NOIMPORT:
            log.warning(
                "workflow %s cannot be imported in an isolation process; its suspects run "
                "alone in this worker instead",
                run.workflow,
            )
            worker.unspawnable.add(run.workflow)
        if status is not None:
            self._idle.append(child)
            await self._give_back(claimed)  # fenced: a no-op unless the child left it ours
            return
        log.error(
            "run %s took down the process executing it alone (exit code %s)",
            run.id,
            child.proc.returncode,
        )
        try:
            await worker.client.store.strike(
                worker.owner,
                run.id,
                claimed.epoch,
                worker.client.clock.now(),
                worker.max_recoveries,
            )
        except StoreError as exc:  # its lease runs out; it stays a suspect, uncharged
            log.warning("run %s: could not record the strike: %s", run.id, exc)

    async def _give_back(self, claimed: Claimed) -> None:
        worker = self.worker
        with contextlib.suppress(StoreError):
            await worker.client.store.release(
                worker.owner, {claimed.run.id: claimed.epoch}, worker.client.clock.now()
            )

    async def close(self) -> None:
        children, self._idle = [*self._idle, *self._busy], []
        for child in children:
            if child.proc.stdin is not None:
                child.proc.stdin.close()  # an idle child ends at end of input
        await asyncio.gather(*(c.kill() for c in children), return_exceptions=True)


# -- the child -------------------------------------------------------------------------------
def _die_with(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the worker died before the signal was armed
        os._exit(TEMPFAIL)


async def _drive_one(client: Any, spec: dict[str, Any]) -> int:
    import importlib

    from spokehub.runtime.worker import Worker

    try:
        importlib.import_module(spec["module"])  # registers the workflow and its steps
    except Exception:
        log.exception("isolation process: cannot import %s", spec["module"])
        return NOIMPORT
    try:
        run = await client.store.get_run(spec["run_id"])
        if run.lease_owner != spec["owner"] or run.lease_epoch != spec["epoch"]:
            return TEMPFAIL
        events = await client.store.events(run.id)
    except StoreError as exc:
        log.warning("isolated run %s: %s", spec["run_id"], exc)
        return TEMPFAIL
    worker = Worker(client, queues=[run.queue], concurrency=1, root_id=run.root_id)
    worker.owner = spec["owner"]  # commits and heartbeats under the supervisor's lease
    worker.adopt(Claimed(run, spec["epoch"], events))
    client._heartbeats.add(worker)
    try:
        (_, task) = worker.active[run.id]
        await task
    finally:
        client._heartbeats.remove(worker)
    return 0


async def _serve(setup: dict[str, Any], answers: Any) -> None:
    from spokehub.config import Settings
    from spokehub.runtime.client import Client

    client = Client(settings=Settings(**setup["settings"]))
    loop = asyncio.get_running_loop()
    try:
        try:
            await client.ensure_schema()
            ready = True
        except StoreError as exc:  # answer TEMPFAIL: the worker tries again later
            log.warning("isolation process cannot open the store: %s", exc)
            ready = False
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            status = await _drive_one(client, json.loads(line)) if ready else TEMPFAIL
            answers.write(f"{status}\n")
            answers.flush()
    finally:
        await client.close_async()


def main() -> None:
    setup = json.loads(sys.stdin.readline())
    _die_with(setup["parent"])
    sys.path[:] = setup["path"]
    # Answers go to the original stdout; what user code prints goes to stderr instead.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    asyncio.run(_serve(setup, answers))


if __name__ == "__main__":
    main()
