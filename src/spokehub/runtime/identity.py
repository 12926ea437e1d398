"""Who holds a lease, and when a worker may be *sure* that holder is dead.

A lease owner is named ``name:pid:token``. Waiting for a dead worker's leases to run out
costs up to ``lease_seconds`` per crash, so a worker that can prove an owner dead takes its
runs at once (the dead-owner shortcut). A pid alone proves nothing: containers and cloned VMs
share host names while each has its own pids, and pids are recycled. So the token carries

* a tag of the kernel boot (``/proc/sys/kernel/random/boot_id``) and of the PID namespace
  (the inode of ``/proc/self/ns/pid``), and
* the owner process's start time (field 22 of ``/proc/<pid>/stat``, clock ticks since boot),

and an owner counts as dead only when its tag equals ours (same kernel, same pid numbering)
and its pid is gone, a zombie, or now names a process that started at another time. Anything
else (another namespace or machine, a name without the tag, no ``/proc``) is left to its
lease.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections.abc import Sequence
from functools import cache
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(path: Path) -> list[str] | None:
    """Fields 3.. of a ``stat`` file (the command name may hold spaces and parentheses)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    if not head:
        return None
    return [head.split(" (", 1)[0], *rest.split()]  # [pid, state, ppid, ...]


def start_time(pid: int) -> str | None:
    """The start time of live process ``pid`` in this PID namespace; None if gone or a zombie."""
    fields = _stat_fields(PROC / str(pid) / "stat")
    if fields is None or len(fields) < 21 or fields[1] in ("Z", "X"):
        return None
    return fields[20]  # field 22 of stat(5)


@cache
def namespace_tag() -> str | None:
    """A short tag of (boot id, PID namespace), or None where this cannot be known for sure."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        pidns = os.readlink(PROC / "self/ns/pid")
    except OSError:
        return None
    own = _stat_fields(PROC / "self/stat")
    # A /proc mounted for another PID namespace shows other pids: no shortcut then.
    if own is None or own[0] != str(os.getpid()):
        return None
    return hashlib.sha256(f"{boot}/{pidns}".encode()).hexdigest()[:10]


@cache
def _own_start_time(pid: int) -> str | None:  # keyed by pid: a forked child reads its own
    return start_time(pid)


def owner_name(name: str | None) -> str:
    """A fresh lease owner name for this process: ``name:pid:random[.tag.start]``."""
    token = secrets.token_hex(4)
    tag = namespace_tag()
    started = _own_start_time(os.getpid()) if tag is not None else None
    if tag is not None and started is not None:
        token = f"{token}.{tag}.{started}"
    return f"{name or socket.gethostname()}:{os.getpid()}:{token}"


def surely_dead(owner: str) -> bool:
    """True only when ``owner`` provably names a process of this kernel and PID namespace
    that no longer runs."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    token = parts[2].split(".")
    tag = namespace_tag()
    if len(token) != 3 or tag is None or token[1] != tag:
        return False  # another machine or container, or an owner of an older version
    return start_time(int(parts[1])) != token[2]


def dead_local_owners(owners: Sequence[str], me: str) -> list[str]:
    """The owners among ``owners`` that are surely dead (never ``me``)."""
    return [owner for owner in owners if owner != me and surely_dead(owner)]
