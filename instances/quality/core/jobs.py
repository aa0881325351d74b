"""What the quality instance is doing, for the bridge's dashboard: the running tool calls and the last one
that finished.

``Progress`` feeds a ``Job`` with the same values it sends as MCP progress notifications, whether or not
the client asked for them (MCP only sends them when the request carries a progress token; the dashboard
wants them always). The last summary is written next to the saved reports (``last-run.json``), so a
restarted instance still shows what its previous life ran. ``GET /quality/status`` serves ``status()``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUMMARY_FILE = "last-run.json"
# Tools that run nothing worth watching (they answer from files at once) do not replace the last run.
UNTRACKED = frozenset({"list_profiles", "quality_trends"})
FIRST_FAILURES = 5
MESSAGE_CHARS = 200  # a step message is one line on the page; the tenant's test names can be long


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Job:
    """One tool call in flight; ``update`` is the Progress listener."""

    id: int
    tool: str
    started_at: str = field(default_factory=_now)
    message: str = "starting"
    progress: float = 0.0
    total: float | None = None
    _t0: float = field(default_factory=time.monotonic, repr=False)

    def update(self, value: float, total: float | None, message: str | None) -> None:
        self.progress, self.total = value, total
        if message:
            self.message = message[:MESSAGE_CHARS]

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tool": self.tool,
            "message": self.message,
            "progress": round(self.progress, 3),
            "total": self.total,
            "started_at": self.started_at,
            "elapsed_s": round(time.monotonic() - self._t0, 1),
        }


class JobRegistry:
    """The running jobs and the last finished run's summary of one instance (one event loop: no locks)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory  # the reports folder; None keeps everything in memory
        self._ids = itertools.count(1)
        self.running: dict[int, Job] = {}
        self.last: dict[str, Any] | None = None
        self.by_tool: dict[str, dict[str, Any]] = {}  # each tool's last summary, for its trend
        self._save_failed = False
        self._load()

    def begin(self, tool: str) -> Job:
        job = Job(next(self._ids), tool)
        self.running[job.id] = job
        return job

    def finish(self, job: Job, result: dict[str, Any] | None) -> dict[str, Any]:
        """Forget the running job and keep (and save) its summary; ``result`` None: it was cancelled."""
        self.running.pop(job.id, None)
        summary = summarize(job, result, self.by_tool.get(job.tool))
        self.last = summary
        self.by_tool[job.tool] = summary
        self._save()
        return summary

    def status(self) -> dict[str, Any]:
        html = self.report_html()
        return {
            "running": [job.view() for job in self.running.values()],
            "last": self.last,
            "last_report": self.by_tool.get("quality_report"),
            "report_html": html.name if html else None,
        }

    def report_html(self) -> Path | None:
        """The newest saved HTML report (names carry a sortable time stamp), or None."""
        if self.directory is None or not self.directory.is_dir():
            return None
        with contextlib.suppress(OSError):
            names = sorted(p.name for p in self.directory.glob("report-*.html") if p.is_file())
            if names:
                return self.directory / names[-1]
        return None

    # ---- persistence -------------------------------------------------------------------------------

    def _load(self) -> None:
        if self.directory is None:
            return
        try:
            data = json.loads((self.directory / SUMMARY_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # none yet, or unreadable: start empty rather than fail the instance
        if isinstance(data, dict):
            last, by_tool = data.get("last"), data.get("by_tool")
            self.last = last if isinstance(last, dict) else None
            self.by_tool = {k: v for k, v in (by_tool or {}).items() if isinstance(v, dict)}

    def _save(self) -> None:
        if self.directory is None:
            return
        path = self.directory / SUMMARY_FILE
        tmp = path.with_name(f".{SUMMARY_FILE}.{os.getpid()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"last": self.last, "by_tool": self.by_tool}, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)  # a reader (or a crash) never sees half a file
        except OSError as exc:  # a read-only workspace: the summary lives in memory only
            if not self._save_failed:  # said once, not after every tool call
                log.warning("cannot save %s (kept in memory): %s", path, exc)
            self._save_failed = True


# ---- summaries ----------------------------------------------------------------------------------------


def summarize(job: Job, result: dict[str, Any] | None, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The facts the dashboard shows of a finished run: status, failures, findings, score, trend."""
    result = result or {"status": "cancelled"}
    summary: dict[str, Any] = {
        "tool": job.tool,
        "status": result.get("status", "unknown"),
        "started_at": job.started_at,
        "finished_at": _now(),
        "duration_s": round(time.monotonic() - job._t0, 1),
        "failures": None,
        "failed": [],
        "findings": None,
        "score": None,
    }
    if job.tool == "quality_report":
        _report_facts(summary, result)
    else:
        _tool_facts(summary, result)
    if isinstance(result.get("error"), dict):
        summary["error"] = str(result["error"].get("message", ""))[:MESSAGE_CHARS]
    summary["trend"] = trend(summary, previous)
    return summary


def _tool_facts(summary: dict[str, Any], result: dict[str, Any]) -> None:
    counts = result.get("counts")
    if isinstance(counts, dict) and "failed" in counts:  # a test run
        summary["failures"] = int(counts.get("failed") or 0) + int(counts.get("errors") or 0)
        summary["counts"] = {k: counts.get(k) for k in ("total", "passed", "failed", "skipped", "errors")}
    elif isinstance(counts, dict) and isinstance(counts.get("total"), int):  # lint, security: findings
        summary["findings"] = counts["total"]
    summary["failed"] = _failed_names(result.get("failed_tests"), result.get("failures"))


def _report_facts(summary: dict[str, Any], result: dict[str, Any]) -> None:
    score = result.get("score")
    summary["score"] = score.get("value") if isinstance(score, dict) else None
    summary["passed"] = result.get("passed")
    metrics = result.get("metrics") if isinstance(result.get("metrics"), dict) else {}
    tests = metrics.get("tests") if isinstance(metrics.get("tests"), dict) else {}
    if tests:
        summary["failures"] = int(tests.get("failed") or 0) + int(tests.get("errors") or 0)
    findings = [(metrics.get(k) or {}).get("total") for k in ("lint", "security")]
    if any(isinstance(n, int) for n in findings):
        summary["findings"] = sum(n for n in findings if isinstance(n, int))
    tests_section = (result.get("sections") or {}).get("tests") or {}
    summary["failed"] = _failed_names(tests_section.get("failed_tests"), tests_section.get("failures"))
    files = result.get("files") if isinstance(result.get("files"), dict) else {}
    summary["html"] = Path(files["html"]).name if files.get("html") else None


def _failed_names(failed_tests: Any, failures: Any) -> list[str]:
    names = [str(t) for t in failed_tests or [] if t]
    if not names:
        names = [str(f.get("test")) for f in failures or [] if isinstance(f, dict) and f.get("test")]
    return [n[:MESSAGE_CHARS] for n in names[:FIRST_FAILURES]]


def trend(summary: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """This run against the same tool's previous one: the score for a report, else failures or findings."""
    for key, higher_is_better in (("score", True), ("failures", False), ("findings", False)):
        now = summary.get(key)
        if now is None:
            continue
        before = (previous or {}).get(key)
        if not isinstance(before, int | float):
            return {"metric": key, "previous": None, "direction": "first run"}
        better = (now > before) == higher_is_better
        direction = "unchanged" if now == before else "improving" if better else "worsening"
        return {"metric": key, "previous": before, "direction": direction}
    return None
