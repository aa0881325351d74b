"""run_tests: pytest (junit XML + coverage JSON) for Python; jest/vitest per package (js_tests.py)."""

from __future__ import annotations

import json
import tempfile
import xml.etree.ElementTree as ET  # nosec B405 - only for ParseError
from pathlib import Path
from typing import Any

from ..core.errors import checked_timeout
from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.runner import RunResult, clean_env, read_bounded_file
from ..core.toolrun import ToolRun
from ..core.workspace import Workspace
from .contexts import CONTEXT_ARGS
from .js_tests import run_js_ids, run_js_tests
from .plan import make_plan, normalise_xdist_output
from .py_declared import python_declared
from .pytestconfig import full_run_config
from .shards import SplitRun, merge_runs
from .testhistory import after_run
from .testmerge import combine_sections
from .testparse import (
    empty_counts,
    parse_coverage_json,
    parse_junit,
    parse_verbose_output,
)
from .testselect import describe_selection, mark_nothing_ran, parse_ids, pytest_keyword_problem

# Coverage settings used when the workspace has none of its own: measure the code, not the tests.
_DEFAULT_COVERAGERC = """[run]
branch = True
omit =
    */tests/*
    */test/*
    */test_*.py
    */*_test.py
    */conftest.py
    */.venv/*
    */venv/*
    */site-packages/*
    */.paradise/*
"""
_PYTEST_EXIT = {
    0: "all tests passed",
    1: "some tests failed",
    2: "the run was interrupted (often a collection error)",
    3: "pytest hit an internal error",
    4: "pytest was called wrongly (usage error)",
    5: "no tests were collected",
}


def _bounded(items: list[Any], limit: int) -> tuple[list[Any], bool]:
    return items[:limit], len(items) > limit


def _pytest_argv(
    python: str,
    junit: Path,
    targets: list[str],
    keyword: str | None,
    coverage_args: list[str],
    config_args: list[str],
) -> list[str]:
    argv = [
        python,
        "-m",
        "pytest",
        "-v",
        "--color=no",
        "-p",
        "no:cacheprovider",
        "-o",
        "junit_family=xunit1",
        f"--junitxml={junit}",
        *config_args,
        *coverage_args,
    ]
    if keyword:
        argv += ["-k", keyword]
    return [*argv, *targets]


async def run_pytest(
    ws: Workspace,
    profile: Profile,
    *,
    targets: list[str] | None = None,
    keyword: str | None = None,
    coverage: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    workers: int | str | None = None,
    max_failures: int | None = None,
) -> dict[str, Any]:
    """Run pytest in the workspace and return counts, failures, coverage and what was skipped.

    The execution plan (plan.py) picks workers and order; a run of selected targets gets the full
    run's ini file and rootdir (pytestconfig.py); the run is recorded under .paradise/tests."""
    timeout = timeout or profile.timeout("tests")
    result: dict[str, Any] = {
        "runner": "pytest",
        "status": "ok",
        "counts": empty_counts(),
        "failures": [],
        "coverage": None,
        "notes": [],
        "skipped": [],
    }
    if not ws.test_files():
        result.update(status="skipped", reason="no Python test files (test_*.py or *_test.py) in the workspace")
        return result
    interp = await ws.interpreter()
    result["interpreter"] = {"path": interp.path, "source": interp.source}
    result["notes"] += interp.notes
    if not interp.has_pytest:
        result.update(
            status="error", error={"code": "tool_missing", "message": f"pytest is not installed in {interp.path}"}
        )
        return result
    with tempfile.TemporaryDirectory(prefix="paradise-pytest-") as tmpdir:
        tmp = Path(tmpdir)
        config_args: list[str] = []
        _, pyproject_error = ws.pyproject()
        if pyproject_error:
            (tmp / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
            config_args = ["-c", str(tmp / "pytest.ini"), f"--rootdir={ws.root}"]
            result["notes"].append(f"{pyproject_error}; ran pytest with default settings instead")
            result["skipped"].append({"what": "pyproject.toml settings", "reason": pyproject_error})
        else:
            config = full_run_config(ws)
            config_args = config.args() if targets else []
            config_args += _declared_args(ws, config.inifile, result)
        plan = await make_plan(
            ws, interp, tmp, targets=targets or [], keyword=keyword, workers=workers, max_failures=max_failures
        )
        full_suite = not targets and not keyword
        coverage_args: list[str] = []
        rcfile: Path | None = None
        if coverage and not interp.has_pytest_cov:
            result["skipped"].append({"what": "coverage", "reason": f"pytest-cov is not installed in {interp.path}"})
        elif coverage:
            # A run split by file reports coverage once, after combining its processes' data (shards.py).
            report = [] if plan.split == "files" else [f"--cov-report=json:{tmp / 'coverage.json'}"]
            coverage_args = ["--cov-branch", *report, "--cov-report="]
            if ws.has_coverage_config() and not pyproject_error:
                coverage_args.insert(0, "--cov")
            else:
                rcfile = tmp / "coveragerc"
                rcfile.write_text(_DEFAULT_COVERAGERC, encoding="utf-8")
                coverage_args[:0] = [f"--cov={ws.root}", f"--cov-config={rcfile}"]
        if coverage_args and full_suite:
            coverage_args += CONTEXT_ARGS  # per-test coverage for impact selection (contexts.py)
        tool = ToolRun(profile, timeout, progress)
        env = clean_env({"COVERAGE_FILE": str(tmp / ".coverage"), **plan.env})

        def argv(junit: Path) -> list[str]:
            return _pytest_argv(interp.path, junit, targets or [], keyword, coverage_args + plan.args, config_args)

        if plan.split == "files":
            split = SplitRun(tmp, plan.workers)
            runs = await split.run(lambda i: argv(split.junit(i)), env, tool, ws.root)
            # After a timeout the counts come from every process's output, as for a serial run killed early.
            if not any(r.timed_out for r in runs):
                split.merge_junit(tmp / "junit.xml")
                if coverage_args:
                    note = await split.combine_coverage(interp.path, rcfile, tool, ws.root, env)
                    result["notes"] += [note] if note else []
            run = merge_runs(runs)
        else:
            run = await tool.run(argv(tmp / "junit.xml"), "pytest", ws.root, env)
        _fill_pytest_result(result, run, tmp, timeout, profile.max_findings)
        result["plan"] = {**plan.describe(), "workers_used": plan.distribution()}
        await after_run(
            ws,
            tmp,
            result,
            scope="full" if full_suite else "selected",
            workers=plan.workers,
            contexts=bool(coverage_args) and full_suite and not run.timed_out and not max_failures,
        )
    return result


def _declared_args(ws: Workspace, inifile: Path | None, result: dict[str, Any]) -> list[str]:
    """The workspace's own test command's flags (py_declared.py), said in the reply."""
    declared = python_declared(ws, inifile)
    if declared is None:
        return []
    result["declared_test_command"] = declared.describe()
    result["notes"].append(declared.note())
    return declared.args()


def _fill_pytest_result(result: dict[str, Any], run: RunResult, tmp: Path, timeout: float, limit: int) -> None:
    result.update(
        command=run.argv[1:],
        exit_code=run.returncode,
        duration_s=run.duration_s,
        timed_out=run.timed_out,
        output_truncated=run.truncated,
    )
    problem = run.problem(timeout, "pytest")
    junit = read_bounded_file(tmp / "junit.xml")
    parsed: dict[str, Any] | None = None
    if junit:
        try:
            parsed = parse_junit(junit)
        except ET.ParseError as exc:
            result["notes"].append(f"the junit report could not be read ({exc}); counts come from pytest's output")
            junit = None
    if parsed is None and (run.timed_out or run.returncode is not None):
        parsed = parse_verbose_output(normalise_xdist_output(run.stdout))
        result["running_test"] = parsed.get("running_test")
    elif parsed is None:
        parsed = {"counts": empty_counts(), "failures": []}
    result["counts"] = parsed["counts"]
    result["failures"], result["failures_truncated"] = _bounded(parsed.get("failures", []), limit)
    outcomes = parsed.get("outcomes", {})
    failed = sorted(k for k, v in outcomes.items() if v in ("failed", "error"))
    result["failed_tests"], result["failed_tests_truncated"] = _bounded(failed, max(limit, 1) * 4)
    if run.timed_out:
        running = result.get("running_test")
        result.update(
            status="partial",
            error={
                "code": "timeout",
                "message": (
                    f"{problem}; counts are from the output seen so far"
                    + (f"; still running: {running}" if running else "")
                ),
            },
        )
        if "--cov-branch" in run.argv:
            result["skipped"].append({"what": "coverage", "reason": "the run was killed before coverage was written"})
        return
    if problem:
        result.update(
            status="error", error={"code": "tool_missing" if run.missing else "run_failed", "message": problem}
        )
        return
    result["exit_meaning"] = _PYTEST_EXIT.get(run.returncode or 0, f"pytest exited with {run.returncode}")
    if run.returncode == 5:
        result["notes"].append("pytest collected no tests")
    elif run.returncode in (3, 4) or (not junit and run.returncode not in (0, 1)):
        result.update(
            status="error", error={"code": "pytest_error", "message": f"{result['exit_meaning']}: {run.tail(8)}"}
        )
    cov_text = read_bounded_file(tmp / "coverage.json")
    if cov_text:
        result["coverage"] = parse_coverage_json(json.loads(cov_text))
    elif "--cov-branch" in run.argv and run.returncode != 5:
        result["skipped"].append({"what": "coverage", "reason": "pytest-cov wrote no coverage report"})


def _python_wanted(ws: Workspace, targets: list[str]) -> bool:
    """pytest runs for the whole workspace, a .py path, or a directory holding Python test files
    (a path into a JavaScript package does not start an empty pytest run)."""
    if not targets or targets[0] == ".":
        return True
    rel = targets[0].removeprefix("./").rstrip("/")
    return rel.endswith(".py") or any(t.startswith(rel + "/") for t in ws.test_files())


async def run_tests(
    ws: Workspace,
    profile: Profile,
    *,
    path: str | None = None,
    keyword: str | None = None,
    tests: list[str] | None = None,
    coverage: bool | None = None,
    timeout: float | None = None,
    javascript: bool = True,
    progress: Progress | None = None,
    workers: int | str | None = None,
    max_failures: int | None = None,
) -> dict[str, Any]:
    """pytest and every package's jest/vitest; one merged result, each runner keeping its own section."""
    checked_timeout(timeout)  # with workers and max_failures (plan.py): bad input before anything runs
    coverage = profile.coverage if coverage is None else coverage
    if keyword and "::" in keyword and not tests:
        tests, keyword = [keyword], None  # an id pasted as a keyword means that test
    limits: dict[str, Any] = {"workers": workers, "max_failures": max_failures}
    shared: dict[str, Any] = {"coverage": coverage, "timeout": timeout, "progress": progress}
    if tests:
        sections = await _run_ids(ws, profile, tests, javascript, shared, limits)
    else:
        sections = await _run_all(ws, profile, path, keyword, javascript, shared, limits)
    result = combine_sections(sections)
    result["deselected"] = sum(int(s.get("deselected") or 0) for s in sections.values())
    return mark_nothing_ran(result, describe_selection(path, keyword, tests))


async def _run_ids(
    ws: Workspace, profile: Profile, tests: list[str], javascript: bool, shared: dict, limits: dict
) -> dict[str, Any]:
    python_ids, js_ids = parse_ids(ws, tests)
    sections: dict[str, Any] = {}
    if python_ids:
        sections["python"] = await run_pytest(ws, profile, targets=python_ids, **shared, **limits)
    if js_ids and javascript:
        sections.update(await run_js_ids(ws, profile, js_ids, **shared, **limits))
        if not any(s.get("runner") in ("jest", "vitest") for s in sections.values()):
            files = sorted({file for file, _ in js_ids})
            reason = f"no package.json declaring jest or vitest holds {', '.join(files[:5])}"
            sections["javascript"] = {"runner": "jest/vitest", "status": "skipped", "reason": reason}
    return sections


async def _run_all(
    ws: Workspace,
    profile: Profile,
    path: str | None,
    keyword: str | None,
    javascript: bool,
    shared: dict,
    limits: dict,
) -> dict[str, Any]:
    targets = [ws.target(path)] if path else []
    sections: dict[str, Any] = {}
    if javascript:
        sections.update(await run_js_tests(ws, profile, path=path, keyword=keyword, **shared, **limits))
    unreadable = pytest_keyword_problem(keyword) if keyword and ws.test_files() else None
    if unreadable:
        sections = {"python": {"runner": "pytest", "status": "skipped", "reason": unreadable}, **sections}
    elif _python_wanted(ws, targets) or not sections:
        python = await run_pytest(ws, profile, targets=targets, keyword=keyword, **shared, **limits)
        sections = {"python": python, **sections}
        if len(sections) > 1 and python.get("status") == "skipped" and not ws.test_files():
            sections.pop("python")  # a JavaScript-only workspace: "no Python tests" is no gap
    return sections
