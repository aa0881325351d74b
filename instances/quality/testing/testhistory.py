"""What earlier pytest runs left behind under {workspace}/.paradise/tests/: per-test timings and last
outcomes (merged over runs, so a targeted run does not forget the rest of the suite), the last junit
XML as pytest wrote it, and one line per run in runs.jsonl (time, commit, changed files, failed tests).
The execution plan orders tests from it; the risk score and its backtest read it."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET  # nosec B405 - parses the report pytest wrote for us
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.datadir import sub_dir
from ..core.errors import QualityError
from ..core.runner import read_bounded_file, run_command
from ..core.workspace import Workspace
from .contexts import save_contexts
from .testparse import junit_nodeid

HISTORY_DIR = "tests"  # under the instance's data directory (datadir.py)
TIMINGS = "timings.json"
RUNS = "runs.jsonl"
LAST_JUNIT = "last-junit.xml"
_MAX_RUNS_READ = 500
_MAX_FAILED_RECORDED = 500


def history_dir(ws: Workspace, reading: bool = False) -> Path:
    return sub_dir(ws, HISTORY_DIR, reading=reading)


def junit_cases(xml_text: str) -> dict[str, tuple[str, float]]:
    """{node id: (outcome, seconds)} from a junit XML (xunit1) report."""
    root = ET.fromstring(xml_text)  # nosec B314  # noqa: S314 - trusted: written by pytest in our temp dir
    cases: dict[str, tuple[str, float]] = {}
    for case in root.iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
                break
            if child.tag == "skipped":
                outcome = "skipped"
        try:
            seconds = float(case.get("time") or 0.0)
        except ValueError:
            seconds = 0.0
        cases[junit_nodeid(case)] = (outcome, round(seconds, 4))
    return cases


def load_timings(ws: Workspace) -> dict[str, dict[str, Any]]:
    """{node id: {"s": seconds, "outcome": last outcome}}; empty when nothing was recorded."""
    text = read_bounded_file(history_dir(ws, reading=True) / TIMINGS)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return data.get("tests", {}) if isinstance(data, dict) else {}


def read_runs(ws: Workspace, last: int = _MAX_RUNS_READ) -> list[dict[str, Any]]:
    """The recorded runs, oldest first (unreadable lines are skipped)."""
    path = history_dir(ws, reading=True) / RUNS
    if not path.is_file():
        return []
    runs = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[-last:]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            runs.append(entry)
    return runs


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def append_run(ws: Workspace, entry: dict[str, Any]) -> None:
    directory = history_dir(ws)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def record_run(
    ws: Workspace,
    junit_path: Path,
    *,
    commit: str | None,
    changed_files: list[str],
    scope: str,
    duration_s: float,
    workers: int,
) -> dict[str, Any] | None:
    """Merge this run's timings, keep its junit XML, append it to runs.jsonl; the runs.jsonl entry,
    or None when the run left no junit report.  Raises OSError when .paradise cannot be written."""
    text = read_bounded_file(junit_path)
    if not text:
        return None
    try:
        cases = junit_cases(text)
    except ET.ParseError:
        return None
    directory = history_dir(ws)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(junit_path, directory / LAST_JUNIT)
    timings = load_timings(ws)
    for nodeid, (outcome, seconds) in cases.items():
        timings[nodeid] = {"s": seconds, "outcome": outcome}
    _atomic_write(directory / TIMINGS, json.dumps({"schema": 1, "tests": timings}, sort_keys=True))
    failed = sorted(n for n, (o, _) in cases.items() if o in ("failed", "error"))
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "scope": scope,
        "changed_files": changed_files[:200],
        "tests": len(cases),
        "failed": failed[:_MAX_FAILED_RECORDED],
        "duration_s": duration_s,
        "test_seconds": round(sum(s for _, s in cases.values()), 3),
        "workers": workers,
    }
    append_run(ws, entry)
    return entry


async def git_state(ws: Workspace) -> tuple[str | None, list[str]]:
    """(HEAD commit, files changed in the working tree) for the run record; (None, []) without git."""
    base = ["git", "-c", f"safe.directory={ws.root}", "-c", "core.quotepath=false"]
    head = await run_command([*base, "rev-parse", "--verify", "--quiet", "HEAD"], cwd=ws.root, timeout=10)
    if head.returncode != 0:
        return None, []
    status = await run_command(
        [*base, "status", "--porcelain", "-z", "--no-renames", "--untracked-files=all"], cwd=ws.root, timeout=10
    )
    changed = sorted(
        {item[3:] for item in status.stdout.split("\0") if len(item) > 3 and not item[3:].startswith(".paradise/")}
    )
    return head.stdout.strip() or None, changed


async def after_run(
    ws: Workspace, tmp: Path, result: dict[str, Any], *, scope: str, workers: int, contexts: bool = False
) -> None:
    """Record a finished pytest run (timings, junit, runs.jsonl, and with `contexts` its per-test
    coverage); a read-only workspace only costs a note."""
    try:
        commit, changed = await git_state(ws)
        record_run(
            ws,
            tmp / "junit.xml",
            commit=commit,
            changed_files=changed,
            scope=scope,
            duration_s=float(result.get("duration_s") or 0.0),
            workers=workers,
        )
    except (OSError, QualityError) as exc:
        result["notes"].append(f"the run was not recorded: {exc}")
        return
    if contexts:
        try:
            save_contexts(ws, tmp / ".coverage", commit)
        except Exception as exc:  # OSError, or coverage's DataError for a damaged file: only a note
            result["notes"].append(f"per-test coverage was not kept: {type(exc).__name__}: {exc}")
