"""Pure parsers for test results: pytest's junit XML (xunit1), coverage.py JSON, pytest -v output
(for partial results after a timeout), and istanbul's json-summary coverage (jest, vitest)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # nosec B405 - only parses the report pytest wrote for us
from typing import Any

_LOCATION = re.compile(r"^(?P<file>[^\s:][^:\n]*?\.py):(?P<line>\d+): ", re.MULTILINE)
_VERBOSE = re.compile(
    r"^(?P<nodeid>\S+::\S.*?) (?P<outcome>PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)(?=\s|$)", re.MULTILINE
)
_MESSAGE_LIMIT = 2000


def empty_counts() -> dict[str, int]:
    return {"total": 0, "passed": 0, "failed": 0, "skipped": 0, "errors": 0}


def mark_failures(result: dict[str, Any]) -> dict[str, Any]:
    """A run that ran to its end with failing tests has status `failed`, never `ok` (the counts say how
    many); `partial`, `error` and the others keep theirs, as they already say something went wrong."""
    counts = result.get("counts") or {}
    if result.get("status") == "ok" and counts.get("failed", 0) + counts.get("errors", 0) > 0:
        result["status"] = "failed"
    return result


def _clip(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def junit_nodeid(case: ET.Element) -> str:
    """The pytest node id of a junit (xunit1) testcase; the run history keys its timings by it too."""
    file = case.get("file") or ""
    classname = case.get("classname") or ""
    name = case.get("name") or ""
    module = file[:-3].replace("/", ".") if file.endswith(".py") else ""
    parts = classname.split(".")
    if module and classname.startswith(module):
        parts = [p for p in classname[len(module) :].split(".") if p]
        return "::".join([file, *parts, name])
    if file:
        return f"{file}::{name}"
    return f"{classname}::{name}" if classname else name


def _failure_location(text: str, test_file: str) -> tuple[str | None, int | None, str | None, int | None]:
    """(file, line) in the test file where the failure surfaced, and (file, line) of the crash."""
    found = [(m.group("file"), int(m.group("line"))) for m in _LOCATION.finditer(text)]
    if not found:
        return None, None, None, None
    crash_file, crash_line = found[-1]
    in_test = [loc for loc in found if test_file and loc[0].endswith(test_file)]
    file, line = in_test[-1] if in_test else found[-1]
    return file, line, crash_file, crash_line


def parse_junit(xml_text: str) -> dict[str, Any]:
    """Counts, failures (with file, line, message) and per-test outcomes from pytest's junit XML.

    Requires `-o junit_family=xunit1` so each testcase carries its `file` and (0-based) `line`."""
    root = ET.fromstring(xml_text)  # nosec B314  # noqa: S314 - trusted: written by pytest in our temp dir
    counts = empty_counts()
    failures: list[dict[str, Any]] = []
    outcomes: dict[str, str] = {}
    for case in root.iter("testcase"):
        nodeid = junit_nodeid(case)
        counts["total"] += 1
        outcome = "passed"
        problem: ET.Element | None = None
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
                problem = child
                break
            if child.tag == "skipped":
                outcome = "skipped"
        counts[{"passed": "passed", "failed": "failed", "error": "errors", "skipped": "skipped"}[outcome]] += 1
        outcomes[nodeid] = outcome
        if problem is not None:
            test_file = case.get("file") or ""
            text = problem.text or ""
            file, line, crash_file, crash_line = _failure_location(text, test_file)
            if file is None and case.get("line") is not None:
                file, line = test_file, int(case.get("line", "0")) + 1
            if not test_file and not file:
                # A collection error: the testcase names the module ("tests.test_x").
                guess = (case.get("name") or "").replace(".", "/") + ".py"
                file = crash_file or guess
                line = crash_line
            lines = text.strip().splitlines()
            message = problem.get("message") or (lines[-1] if lines else outcome)
            if message == "collection failure":
                detail = [ln[1:].strip() for ln in lines if ln.startswith("E ") and ln[1:].strip()]
                message = f"collection failure: {detail[-1]}" if detail else message
            failures.append(
                {
                    "test": nodeid,
                    "kind": outcome,
                    "file": file,
                    "line": line,
                    "message": _clip(message),
                    "crash_file": crash_file,
                    "crash_line": crash_line,
                    "traceback": _clip(text, 2500),
                }
            )
    return {"counts": counts, "failures": failures, "outcomes": outcomes}


def parse_verbose_output(stdout: str) -> dict[str, Any]:
    """Outcomes seen so far in `pytest -v` output, and the test still running when it stopped."""
    counts = empty_counts()
    outcomes: dict[str, str] = {}
    for match in _VERBOSE.finditer(stdout):
        word = match.group("outcome")
        outcome = {"PASSED": "passed", "XPASS": "passed", "FAILED": "failed", "ERROR": "error"}.get(word, "skipped")
        outcomes[match.group("nodeid")] = outcome
    for outcome in outcomes.values():
        counts["total"] += 1
        counts["errors" if outcome == "error" else outcome] += 1
    running = None
    last = stdout.rstrip("\n").rsplit("\n", 1)[-1].strip()
    if "::" in last and not _VERBOSE.match(last):
        running = last.split(" ", 1)[0]
    return {"counts": counts, "outcomes": outcomes, "running_test": running}


def _pct(covered: int, total: int) -> float:
    return round(100.0 * covered / total, 2) if total else 100.0


def _coverage(lines: int, lines_covered: int, branches: int, branches_covered: int) -> dict[str, Any]:
    """One file's (or the total's) coverage in the shape every runner's section uses."""
    return {
        "lines_total": lines,
        "lines_covered": lines_covered,
        "line_percent": _pct(lines_covered, lines),
        "branches_total": branches,
        "branches_covered": branches_covered,
        "branch_percent": _pct(branches_covered, branches),
    }


def _coverage_py(summary: dict[str, Any]) -> dict[str, Any]:
    """A coverage.py `summary` (per file or the totals) in that shape."""
    numbers = ("num_statements", "covered_lines", "num_branches", "covered_branches")
    return _coverage(*(int(summary.get(key, 0)) for key in numbers))


def parse_coverage_json(data: dict[str, Any], max_missing: int = 50) -> dict[str, Any]:
    """Line and branch coverage per file and in total from `coverage json` output."""
    files: dict[str, Any] = {}
    for path, info in sorted(data.get("files", {}).items()):
        files[path.replace("\\", "/")] = {
            **_coverage_py(info.get("summary", {})),
            "missing_lines": info.get("missing_lines", [])[:max_missing],
            "_executed_lines": info.get("executed_lines", []),
        }
    total = _coverage_py(data.get("totals", {}))
    total["branch_measured"] = bool(data.get("meta", {}).get("branch_coverage"))
    return {"files": files, "total": total}


def parse_jest_coverage(summary: dict[str, Any]) -> dict[str, Any]:
    """Line/branch coverage per file and in total from jest's coverage-summary.json."""

    def entry(info: dict[str, Any]) -> dict[str, Any]:
        lines, branches = info.get("lines", {}), info.get("branches", {})
        return _coverage(
            int(lines.get("total", 0)),
            int(lines.get("covered", 0)),
            int(branches.get("total", 0)),
            int(branches.get("covered", 0)),
        )

    files = {path: entry(info) for path, info in sorted(summary.items()) if path != "total"}
    total = entry(summary.get("total", {}))
    total["branch_measured"] = True
    return {"files": files, "total": total}
