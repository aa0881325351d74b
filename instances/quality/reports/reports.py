"""quality_report (run a profile, write HTML/JSON/Markdown under {workspace}/.paradise/reports/, append
history.jsonl) and quality_trends (compare the last N runs)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..app.appsteps import run_app_step
from ..checks.lint import lint
from ..checks.security import security_scan
from ..core.datadir import sub_dir
from ..core.errors import QualityError
from ..core.js_packages import JS_SUFFIXES
from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.workspace import Workspace
from ..impact.impact import analyze_changes
from ..testing.tests_tool import run_tests
from .render import to_html, to_markdown
from .scoring import (
    check_thresholds,
    collect_metrics,
    not_measured,
    quality_score,
    report_recommendations,
    untested_changed_functions,
)
from .trends import compare_runs, history_entry

REPORT_DIR = "reports"  # under the instance's data directory (datadir.py)
HISTORY = "history.jsonl"
_STEP_LABELS = {
    "tests": "running tests",
    "lint": "linting",
    "security": "scanning for security issues",
    "dependencies": "auditing dependencies",
    "changes": "analysing changes",
    "e2e": "running end-to-end tests",
    "api": "running API tests",
    "performance": "measuring performance",
}


def report_dir(ws: Workspace) -> Path:
    """Where the reports and history.jsonl are: the workspace's .paradise/reports, else the instance's state."""
    return sub_dir(ws, REPORT_DIR)


def public(value: Any) -> Any:
    """A copy without internal keys (those starting with '_', e.g. executed line lists)."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items() if not (isinstance(k, str) and k.startswith("_"))}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value


async def _run_step(step: str, ws: Workspace, profile: Profile, base_ref: str, progress: Progress) -> dict[str, Any]:
    try:
        if step == "tests":
            return await run_tests(ws, profile, javascript=profile.javascript, progress=progress)
        if step == "lint":
            return await lint(ws, profile, javascript=profile.javascript, progress=progress)
        if step == "security":
            return await security_scan(ws, profile, include_dependencies=False, progress=progress)
        if step == "dependencies":
            return await security_scan(ws, profile, include_code=False, javascript=profile.javascript)
        if step in ("e2e", "api", "performance"):
            return await run_app_step(step, ws, profile, progress)
        return await analyze_changes(ws, profile, base_ref=base_ref, include_edges=False)
    except QualityError as exc:
        return {"tool": step, "status": "error", "error": exc.as_dict()}


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def write_report_files(ws: Workspace, report: dict[str, Any]) -> dict[str, str]:
    """Write report-<stamp>-<profile>.{json,md,html} and append the run to history.jsonl."""
    directory = report_dir(ws)
    directory.mkdir(parents=True, exist_ok=True)
    base = f"report-{report['_stamp']}-{report['profile']['name']}"
    files = {"json": f"{base}.json", "md": f"{base}.md", "html": f"{base}.html"}
    report["files"] = {kind: ws.relative(str(directory / name)) for kind, name in files.items()}
    report["history"] = ws.relative(str(directory / HISTORY))
    clean = public(report)
    (directory / files["json"]).write_text(json.dumps(clean, indent=2, sort_keys=True), encoding="utf-8")
    (directory / files["md"]).write_text(to_markdown(clean), encoding="utf-8")
    (directory / files["html"]).write_text(to_html(clean), encoding="utf-8")
    line = json.dumps(history_entry(clean), sort_keys=True) + "\n"
    fd = os.open(directory / HISTORY, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return report["files"]


async def quality_report(
    ws: Workspace, profile: Profile, *, base_ref: str = "HEAD", progress: Progress | None = None
) -> dict[str, Any]:
    """Run every step of the profile, score the result, check thresholds, write the report files."""
    progress = progress or Progress()
    progress.total = float(len(profile.tools) + 1)
    started = time.monotonic()
    now = datetime.now(UTC)
    sections: dict[str, Any] = {}
    for index, step in enumerate(profile.tools):
        await progress.step(index, _STEP_LABELS[step])
        sections[step] = await _run_step(step, ws, profile, base_ref, progress)
    await progress.step(len(profile.tools), "writing the report")
    python_lines = ws.source_lines(ws.python_files())
    metrics = collect_metrics(sections, python_lines, ws.source_lines(ws.files(JS_SUFFIXES)))
    score = quality_score(metrics)
    score["not_measured"] = not_measured(sections)
    checks = check_thresholds(profile.thresholds, metrics, score["value"])
    untested = untested_changed_functions(sections.get("changes"), (sections.get("tests") or {}).get("coverage"))
    metrics["untested_changed_functions"] = len(untested)
    skipped = [
        {"what": f"{step}: {s['what']}", "reason": s["reason"]}
        for step, section in sections.items()
        for s in section.get("skipped", [])
    ]
    skipped += [
        {"what": step, "reason": section["error"]["message"]}
        for step, section in sections.items()
        if section.get("status") == "error" and section.get("error")
    ]
    report: dict[str, Any] = {
        "schema": 1,
        "generated_at": now.isoformat(timespec="seconds"),
        "_stamp": _stamp(now),
        "workspace": str(ws.root),
        "profile": profile.summary(),
        "duration_s": round(time.monotonic() - started, 3),
        "metrics": metrics,
        "score": score,
        "thresholds": checks,
        "passed": all(c["passed"] is not False for c in checks),
        "untested_changed_functions": untested,
        "recommendations": report_recommendations(sections, metrics, checks, untested),
        "skipped": skipped,
        "sections": sections,
    }
    try:
        write_report_files(ws, report)
    except (OSError, QualityError) as exc:
        # e.g. a read-only workspace mount: the report is still returned, only the files are missing
        report["files"] = None
        skipped.append({"what": "report files", "reason": f"cannot write the report files: {exc}"})
    await progress.done("report written")
    status = "incomplete" if score["not_measured"] else ("ok" if not skipped else "partial")
    return {"tool": "quality_report", "status": status, **public(report)}


def read_history(ws: Workspace) -> tuple[list[dict[str, Any]], int]:
    """All history entries (oldest first) and how many lines could not be read."""
    path = sub_dir(ws, REPORT_DIR, reading=True) / HISTORY
    if not path.is_file():
        return [], 0
    entries, bad = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(entry, dict):
            entries.append(entry)
        else:
            bad += 1
    return entries, bad


def quality_trends(ws: Workspace, *, last: int = 5, profile: str | None = None) -> dict[str, Any]:
    if last < 2:
        raise QualityError("bad_argument", "last must be at least 2 to compare runs")
    entries, bad = read_history(ws)
    if profile:
        entries = [e for e in entries if e.get("profile") == profile]
    window = entries[-last:]
    result = {
        "tool": "quality_trends",
        "status": "ok" if len(window) >= 2 else "partial",
        "history": ws.relative(str(sub_dir(ws, REPORT_DIR, reading=True) / HISTORY)),
        "available_runs": len(entries),
        "unreadable_lines": bad,
        **compare_runs(window),
    }
    if not entries:
        result["note"] = (
            f"no quality_report with profile {profile!r} in the history"
            if profile
            else "no quality_report has been run in this workspace yet"
        )
    return result
