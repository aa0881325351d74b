"""A full disk or a locked database is the operator's problem to fix, never a 500: this module names both.

A tenant (or a log, or a backup) can fill the data dir's file system. Then a write of the database or of a
file fails with ``ENOSPC`` or SQLite's "database or disk is full", and every call that writes answered 500
with a traceback. Here:

- ``storage_error(exc)`` maps such a failure, wherever it sits in the exception's chain (SQLAlchemy wraps the
  driver's error), to ``InsufficientStorage`` (507) or, for a database locked by another writer past the wait,
  ``DatabaseBusy`` (503 with Retry-After); None for anything else. ``store.session`` and the error middleware
  use it, so a caller sees the same two errors whatever wrote.
- ``disk_problem(path)`` says why the file system holding ``path`` cannot take writes now (too few bytes or no
  inode left), or None. The API checks it before a change that would stop or write something (registration,
  token rotation, restart), so a full disk refuses the change up front and running instances keep serving.
  ``doctor`` and the storage alarm (observability/alerts.py) report the same sentence.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from bridge.errors import BridgeError, DatabaseBusy, InsufficientStorage

# Below this much free space a change is refused: a registration writes the database, an instance's
# directory and its first log lines; a restart rewrites the instance's files.
MIN_FREE_BYTES = 1024 * 1024
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL, _SQLITE_BUSY, _SQLITE_LOCKED = 13, 5, 6
_PG_FULL = frozenset({"53100", "53000"})  # disk_full, insufficient_resources
_PG_BUSY = frozenset({"55P03", "40P01"})  # lock_not_available, deadlock_detected
BUSY_RETRY_AFTER = 2


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts, and the driver errors SQLAlchemy keeps in ``.orig`` (bounded)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 32:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        orig = getattr(current, "orig", None)
        todo += [current.__cause__, current.__context__, orig if isinstance(orig, BaseException) else None]
    return seen


def _kind(exc: BaseException) -> str | None:
    if isinstance(exc, InsufficientStorage):
        return "full"
    if isinstance(exc, DatabaseBusy):
        return "busy"
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return "full"
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        text = str(exc).lower()
        if code == _SQLITE_FULL or "database or disk is full" in text:
            return "full"
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED) or "database is locked" in text or "table is locked" in text:
            return "busy"
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if state in _PG_FULL:
        return "full"
    if state in _PG_BUSY:
        return "busy"
    return None


def storage_error(exc: BaseException) -> BridgeError | None:
    """The 507 or 503 error ``exc`` amounts to, or None when it is not a storage failure."""
    for link in _chain(exc):
        kind = _kind(link)
        if kind == "full":
            if isinstance(link, InsufficientStorage):
                return link
            return InsufficientStorage(
                "the bridge's storage is full (no space left for the database or the data dir): nothing was "
                "changed; free space on the data dir's disk and retry"
            )
        if kind == "busy":
            if isinstance(link, DatabaseBusy):
                return link
            return DatabaseBusy(
                "the database is locked by another writer (a backup, another bridge, a sqlite3 shell); nothing "
                "was changed; retry shortly",
                retry_after=BUSY_RETRY_AFTER,
            )
    return None


def disk_problem(path: Path, min_free: int = MIN_FREE_BYTES) -> str | None:
    """Why the file system holding ``path`` cannot take writes now, or None (a missing path: its parent's)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        info = os.statvfs(probe)
    except OSError:
        return None  # nothing to judge by; the write itself will say
    free = info.f_bavail * info.f_frsize
    if free < min_free:
        return f"the disk holding the data dir {path} is full ({free // 1024} KiB free, {min_free // 1024} KiB needed)"
    if info.f_files and info.f_favail == 0:
        return f"the disk holding the data dir {path} has no free inodes left"
    return None


def require_space(path: Path) -> None:
    """507 (InsufficientStorage) before a change when the data dir's disk is full (blocking: one statvfs)."""
    problem = disk_problem(path)
    if problem is not None:
        raise InsufficientStorage(f"{problem}: nothing was changed; free space there and retry")
