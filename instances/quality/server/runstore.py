"""Kept runs: every tool result gets a `run_id`, and the instance keeps the full result of its last
runs so that `page=N` or `detail='full'` read the same run back, in milliseconds, instead of running
the suite again (a second run may differ from the first, and costs minutes on a real suite).

The store is in memory and bounded (a number of runs and a total size), per instance, which is per
client.  `run_id` names a kept run; a call with `page` > 1 or `detail='full'` and no `run_id` reads the
last run of the same tool, unless the call names an argument the last run had otherwise (then it is a new
question, and runs).  A call without either runs the tool anew."""

from __future__ import annotations

import copy
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..core.errors import QualityError
from .sizing import byte_size

MAX_RUNS = 12
MAX_BYTES = 48_000_000
"""All kept results together; one result larger than this is not kept (the reply says so)."""


@dataclass
class KeptRun:
    run_id: str
    tool: str
    ran_at: str
    result: dict[str, Any]
    size: int
    arguments: dict[str, Any] = field(default_factory=dict)


class RunStore:
    def __init__(self, max_runs: int = MAX_RUNS, max_bytes: int = MAX_BYTES) -> None:
        self.max_runs, self.max_bytes = max_runs, max_bytes
        self._runs: OrderedDict[str, KeptRun] = OrderedDict()
        self._last: dict[str, str] = {}
        self._count = 0

    def new_id(self, tool: str) -> str:
        self._count += 1
        return f"{tool}-{self._count}-{secrets.token_hex(3)}"

    def keep(self, run_id: str, tool: str, result: dict[str, Any], arguments: dict[str, Any] | None = None) -> bool:
        """Keep `result` under `run_id` (evicting the oldest runs past the bounds); False when too large."""
        size = byte_size(result)
        if size > self.max_bytes:
            return False
        ran_at = datetime.now(UTC).isoformat(timespec="seconds")
        self._runs[run_id] = KeptRun(run_id, tool, ran_at, result, size, dict(arguments or {}))
        self._last[tool] = run_id
        while len(self._runs) > self.max_runs or sum(r.size for r in self._runs.values()) > self.max_bytes:
            old, _ = self._runs.popitem(last=False)
            self._last = {t: r for t, r in self._last.items() if r != old}
        return True

    def last(self, tool: str, asked: dict[str, Any] | None = None) -> KeptRun | None:
        """The tool's last kept run, if it ran with every argument `asked` names (None values name none)."""
        run_id = self._last.get(tool)
        kept = self._runs.get(run_id) if run_id else None
        if kept is None or any(v is not None and kept.arguments.get(k) != v for k, v in (asked or {}).items()):
            return None
        return kept

    def get(self, tool: str, run_id: str) -> KeptRun:
        kept = self._runs.get(run_id)
        if kept is None:
            known = ", ".join(r.run_id for r in self._runs.values() if r.tool == tool) or "none"
            raise QualityError(
                "unknown_run",
                f"no kept run {run_id!r} (this instance keeps its last {self.max_runs} runs; {tool} runs kept: "
                f"{known}); call without run_id to run again",
            )
        if kept.tool != tool:
            raise QualityError("bad_argument", f"run {run_id!r} is a {kept.tool} run, not {tool}")
        return kept

    def replay(self, kept: KeptRun) -> dict[str, Any]:
        """The kept result, marked as read back (a copy: sizing never changes the kept one)."""
        started = time.monotonic()
        result = copy.deepcopy(kept.result)
        result["served_from"] = {
            "run_id": kept.run_id,
            "ran_at": kept.ran_at,
            "arguments": {k: v for k, v in kept.arguments.items() if v is not None},
            "new_run": False,
            "note": "read back from the kept run; nothing ran again",
            "read_ms": round((time.monotonic() - started) * 1000, 2),
        }
        return result
