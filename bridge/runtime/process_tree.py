"""Finding and ending an instance's whole process family, also after its leader has died.

An instance is recorded by identities (pid + start time, never a pid alone): the *leader* the runtime
started (bwrap, or the command itself without a sandbox), its process group (the leader started a session,
so its pid is the group's id), and, under bubblewrap, the sandbox's PID 1 (the command: killing it tears
the whole PID namespace down). The family is every live process among those, their descendants, and
every process still in the recorded group: a crashed leader's language servers included.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import psutil

SAME_START = 0.05  # seconds: psutil's start times are rounded; a recycled pid starts much later


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


def group_members(pgid: int, leader_pid: int, leader_start: float) -> list[psutil.Process]:
    """Live processes of the recorded group. A group id is a pid, and Linux reuses no pid still used as a
    group id; so while any member lives the id is ours, unless a process with that pid exists and is not
    our leader (the group ended and the number came back): then nothing is ours."""
    holder = _existing(pgid)
    if holder is not None and abs(holder.create_time() - leader_start) > SAME_START:
        return []
    members = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            in_group = os.getpgid(proc.pid) == pgid and proc.create_time() >= leader_start - SAME_START
            if in_group and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
    return members


def _existing(pid: int) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        proc.create_time()
        return proc
    except psutil.Error:
        return None


def family(state: dict[str, Any]) -> list[psutil.Process]:
    """Every live process of the instance recorded in ``state`` (leader first when it lives)."""
    heads = [same_process(state.get("pid"), state.get("create_time"))]
    sandbox = state.get("sandbox") or {}
    heads.append(same_process(sandbox.get("pid"), sandbox.get("create_time")))
    found: dict[int, psutil.Process] = {}
    for head in (h for h in heads if h is not None):
        found.setdefault(head.pid, head)
        with contextlib.suppress(psutil.Error):
            for child in head.children(recursive=True):
                found.setdefault(child.pid, child)
    pgid = state.get("pgid")
    if pgid and state.get("create_time"):
        for member in group_members(int(pgid), int(state["pid"]), float(state["create_time"])):
            found.setdefault(member.pid, member)
    return list(found.values())


def signal_all(members: list[psutil.Process], sig: signal.Signals) -> None:
    """Signal each member by its verified identity (psutil checks the start time before it signals)."""
    for member in members:
        with contextlib.suppress(psutil.Error):
            member.send_signal(sig)
