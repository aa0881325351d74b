"""Finding an instance's whole process family, by proof, never by inference.

An instance is recorded by identities (pid + start time, never a pid alone): the *leader* the runtime
started (bwrap, or the command itself without a sandbox) and, under bubblewrap, the sandbox's PID 1.
Membership is then proven, not guessed from a process group and a start time (a group id outlives its
leader, and the number can come back for someone else's group):

* sandboxed: the sandbox's PID namespace, recorded at launch (its inode). A process is in the family only if
  it is in that namespace. Killing the namespace's PID 1 takes every member down with it.
* unsandboxed: a per-launch marker, ``PARADISE_LAUNCH=<random>``, in the environment of the command; a
  process is in the family only if its own environment carries that exact marker (children inherit it).

Anything else is left alone, whatever its group or session.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import psutil

SAME_START = 0.05  # seconds: psutil's start times are rounded; a recycled pid starts much later
LAUNCH_MARKER = "PARADISE_LAUNCH"


def same_process(pid: int | None, create_time: float | None) -> psutil.Process | None:
    """The live process with this pid and start time, or None (gone, zombie, or a recycled pid)."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - (create_time or 0.0)) > SAME_START or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def identity(proc: psutil.Process) -> dict[str, Any]:
    return {"pid": proc.pid, "create_time": proc.create_time()}


def pid_namespace(pid: int) -> int | None:
    """The inode of the PID namespace ``pid`` lives in (None when it cannot be read)."""
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def in_namespace(namespace: int) -> list[psutil.Process]:
    """Every live process of the PID namespace ``namespace``."""
    members = []
    for proc in psutil.process_iter(["pid"]):
        if pid_namespace(proc.pid) == namespace:
            with contextlib.suppress(psutil.Error):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    members.append(proc)
    return members


def marked(marker: str) -> list[psutil.Process]:
    """Every live process whose environment carries ``PARADISE_LAUNCH=<marker>``."""
    needle = f"{LAUNCH_MARKER}={marker}".encode()
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            with open(f"/proc/{proc.pid}/environ", "rb") as handle:
                if needle in handle.read().split(b"\0") and proc.status() != psutil.STATUS_ZOMBIE:
                    members.append(proc)
        except (OSError, psutil.Error):
            continue
    return members


def family(state: dict[str, Any]) -> list[psutil.Process]:
    """Every live process of the instance recorded in ``state`` (leader first when it lives)."""
    found: dict[int, psutil.Process] = {}
    sandbox = state.get("sandbox") or {}
    for head in (same_process(state.get("pid"), state.get("create_time")),
                 same_process(sandbox.get("pid"), sandbox.get("create_time"))):  # fmt: skip
        if head is not None:
            found.setdefault(head.pid, head)
    if sandbox.get("pidns"):
        members = in_namespace(int(sandbox["pidns"]))
    elif state.get("marker"):
        members = marked(str(state["marker"]))
    else:
        members = []
    for member in members:
        found.setdefault(member.pid, member)
    return list(found.values())


def signal_all(members: list[psutil.Process], sig: signal.Signals) -> None:
    """Signal each member by its verified identity (psutil checks the start time before it signals)."""
    for member in members:
        with contextlib.suppress(psutil.Error):
            member.send_signal(sig)
