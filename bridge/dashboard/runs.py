"""Each client's recorded quality runs, for the dashboard's trend chart: score and failing tests per run.

Every ``quality_report`` appends one line to ``{workspace}/.paradise/reports/history.jsonl`` (the quality
instance's ``reports.py``); that file is the record of a client's runs, and it is on the bridge's host
(the workspace is a host directory under every runtime). Reading it here needs no running instance: a paused
or idle quality instance is neither woken nor asked.

The file is the tenant's: it may be a symlink, a FIFO, huge, or garbage. So it is opened component by
component below the workspace with ``O_NOFOLLOW`` (no link is followed out of the workspace), must be a
regular file, only its last ``TAIL_BYTES`` are read, and only a few numbers are taken from each line. Reads
are cached on the file's identity and size, so a snapshot every 15 s costs one ``stat`` per client.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any

PARTS = (".paradise", "reports", "history.jsonl")
TAIL_BYTES = 256 * 1024
MAX_RUNS = 50  # the newest runs shown per client
_cache: dict[str, tuple[tuple[int, int, int, int], list[dict[str, Any]]]] = {}
CACHE_SIZE = 1024


def quality_runs(workspace: str) -> list[dict[str, Any]]:
    """The newest recorded runs of the workspace, oldest first: ``{"at", "score", "failures", "passed"}``."""
    try:
        fd = _open_below(Path(workspace).expanduser(), PARTS)
    except OSError:
        return []  # no runs yet (or not a plain file): nothing to draw
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return []
        identity = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
        cached = _cache.get(workspace)
        if cached and cached[0] == identity:
            return cached[1]
        start = max(0, info.st_size - TAIL_BYTES)
        data = os.pread(fd, TAIL_BYTES, start)
    finally:
        os.close(fd)
    runs = parse(data, partial_first=start > 0)
    if len(_cache) >= CACHE_SIZE:
        _cache.clear()
    _cache[workspace] = (identity, runs)
    return runs


def _open_below(root: Path, parts: tuple[str, ...]) -> int:
    """Open root/parts[0]/.../parts[-1] without following a symlink in any of the parts (O_NOFOLLOW)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = child
        # O_NONBLOCK: a FIFO put there must not hang the bridge's worker thread; fstat then refuses it.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        return os.open(parts[-1], flags, dir_fd=fd)
    finally:
        os.close(fd)


def parse(data: bytes, *, partial_first: bool = False) -> list[dict[str, Any]]:
    """The runs in JSON lines (a first line cut by the tail is skipped); malformed lines are ignored."""
    lines = data.split(b"\n")
    if partial_first:
        lines = lines[1:]
    runs = []
    for line in lines:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                runs.append(_run(entry))
    return runs[-MAX_RUNS:]


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _run(entry: dict[str, Any]) -> dict[str, Any]:
    metrics = entry.get("metrics") if isinstance(entry.get("metrics"), dict) else {}
    tests = metrics.get("tests") if isinstance(metrics.get("tests"), dict) else {}
    failed, errors = _number(tests.get("failed")), _number(tests.get("errors"))
    failures = None if failed is None and errors is None else (failed or 0) + (errors or 0)
    at = entry.get("generated_at")
    return {
        "at": at[:40] if isinstance(at, str) else None,
        "score": _number(entry.get("score")),
        "failures": failures,
        "passed": entry.get("passed") if isinstance(entry.get("passed"), bool) else None,
    }
