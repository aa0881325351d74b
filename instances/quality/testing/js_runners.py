"""jest and vitest: one run per package and runner, results from the runner's JSON report (both
write the jest format), coverage from istanbul's json-summary, test files listed by the runner itself
(its own configuration decides), with the runners' default patterns as the fallback."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from ..core.js_packages import JS_SUFFIXES, JsPackage, major_version, node_env, node_tool, tool_version, toolchain_dirs
from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.runner import read_bounded_file, run_command
from ..core.toolrun import ToolRun
from ..core.workspace import Workspace
from .js_declared import declared_flags
from .js_select import NameFilter, deselect, limit_args, selection_args
from .testparse import empty_counts, parse_jest_coverage

# A stack frame "at fn (/abs/file.js:12:5)" or "at /abs/file.js:12:5".
_FRAME = re.compile(r"(?:\(|at )(?:file://)?(?P<file>/[^():\s]+):(?P<line>\d+):\d+\)?")
_JEST_DEFAULT = re.compile(r"(^|/)__tests__/.+\.[mc]?[jt]sx?$|(^|/|\.)(spec|test)\.[mc]?[jt]sx?$")
_VITEST_DEFAULT = re.compile(r"\.(test|spec)\.[mc]?[jt]sx?$")
_LIST_TIMEOUT = 60.0
_JEST_PARTIAL = Path(__file__).with_name("jest_partial_reporter.js")
_MESSAGE_LIMIT = 2000


def default_test_pattern(runner: str) -> re.Pattern[str]:
    return _JEST_DEFAULT if runner == "jest" else _VITEST_DEFAULT


def _clip(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure_location(messages: list[str], test_file: str) -> tuple[str | None, int | None]:
    """The deepest frame in the test file itself (where the failing assertion is)."""
    for message in messages:
        for match in _FRAME.finditer(message):
            if match.group("file") == test_file:
                return match.group("file"), int(match.group("line"))
    return None, None


def _own_frames(text: str) -> str:
    """The message without the runner's own stack frames (those inside node_modules)."""
    return "\n".join(line for line in text.splitlines() if "/node_modules/" not in line)


def parse_js_report(data: dict[str, Any], relative: Any = None) -> dict[str, Any]:
    """Counts and failures (file, line, message) from a jest-format JSON report (jest --json,
    vitest --reporter=json).  `relative` maps the report's absolute file paths to workspace-relative
    ones; only the file part of an id is a path, the test's name stays the runner's, byte for byte."""
    relative = relative or (lambda path: path)
    counts = empty_counts()
    failures: list[dict[str, Any]] = []
    for suite in data.get("testResults", []):
        test_file = suite.get("name", "")
        assertions = suite.get("assertionResults", [])
        if suite.get("status") == "failed" and not assertions:
            counts["errors"] += 1
            counts["total"] += 1
            message = suite.get("message") or suite.get("failureMessage") or "test file failed to run"
            file, line = failure_location([message], test_file)
            rel_file = relative(test_file)
            failures.append(
                {"test": rel_file, "kind": "error", "file": rel_file, "line": line, "message": _clip(message)}
            )
        for result in assertions:
            counts["total"] += 1
            status = result.get("status")
            if status == "passed":
                counts["passed"] += 1
                continue
            if status != "failed":
                counts["skipped"] += 1  # pending, skipped, todo, disabled
                continue
            counts["failed"] += 1
            messages = [str(m) for m in result.get("failureMessages") or []]
            file, line = failure_location(messages, test_file)
            if line is None and isinstance(result.get("location"), dict):
                file, line = test_file, result["location"].get("line")
            first = messages[0].split("\n    at ", 1)[0] if messages else ""
            failures.append(
                {
                    "test": f"{relative(test_file)}::{result.get('fullName') or result.get('title', '')}",
                    "kind": "failed",
                    "file": relative(file or test_file),
                    "line": line,
                    "message": _clip(first),
                    "traceback": _clip(_own_frames("\n".join(messages)), 2500),
                }
            )
    return {"counts": counts, "failures": failures}


def code_only(summary: dict[str, Any]) -> dict[str, Any]:
    """An istanbul json-summary without the data files a test imported (a JSON fixture is no source code),
    its total summed again over the code files when any was dropped."""
    code = {k: v for k, v in summary.items() if k != "total" and k.endswith(JS_SUFFIXES)}
    if len(code) == len([k for k in summary if k != "total"]):
        return summary
    total: dict[str, dict[str, int]] = {}
    for entry in code.values():
        for metric in ("lines", "branches", "statements", "functions"):
            part = total.setdefault(metric, {"total": 0, "covered": 0})
            for key in ("total", "covered"):
                part[key] += int((entry.get(metric) or {}).get(key, 0))
    return {**code, "total": total}


def _bundled_vitest_coverage(vitest: str) -> str | None:
    """The v8 coverage provider next to a bundled vitest (vitest looks for it from the project root,
    which has none when the workspace brings no node_modules)."""
    for base in toolchain_dirs():
        if str(Path(vitest).resolve()).startswith(str((base / "node_modules").resolve())):
            module = base / "node_modules" / "@vitest" / "coverage-v8" / "dist" / "index.js"
            if module.is_file():
                return str(module)
    return None


def _has_module(pkg: JsPackage, ws: Workspace, name: str) -> bool:
    return any((root / "node_modules" / name / "package.json").is_file() for root in (pkg.path, ws.root))


def runner_argv(
    runner: str,
    executable: str,
    pkg: JsPackage,
    ws: Workspace,
    tmp: Path,
    *,
    files: list[str] | None,
    filter_path: str | None,
    name_filter: NameFilter,
    coverage: bool,
    limits: list[str] | None = None,
) -> tuple[list[str], str | None]:
    """The command line, and why coverage could not be asked for (None: it was, or was not wanted)."""
    no_coverage = None
    if runner == "jest":
        argv = [executable, "--ci", "--json", f"--outputFile={tmp / 'report.json'}", "--testLocationInResults"]
        argv += ["--passWithNoTests", "--watchman=false"]
        if coverage:
            argv += ["--coverage", "--coverageReporters=json-summary", f"--coverageDirectory={tmp / 'cov'}"]
        argv += [*(limits or []), *selection_args(runner, name_filter)]
        if files is not None:
            argv += ["--runTestsByPath", *files]
        elif filter_path:
            argv.append(filter_path)
        return argv, None
    argv = [executable, "run", "--no-cache", "--reporter=json", f"--outputFile={tmp / 'report.json'}"]
    argv += ["--includeTaskLocation", "--passWithNoTests"]
    if major_version(tool_version(executable)) >= 5:
        argv.append("--no-fsModuleCache")  # else vitest writes its module cache into the workspace
    if coverage:
        custom = None if _has_module(pkg, ws, "@vitest/coverage-v8") else _bundled_vitest_coverage(executable)
        if custom or _has_module(pkg, ws, "@vitest/coverage-v8"):
            argv += ["--coverage.enabled", "--coverage.reporter=json-summary", "--coverage.reportOnFailure"]
            argv += [f"--coverage.reportsDirectory={tmp / 'cov'}"]
            argv += (
                ["--coverage.provider=custom", f"--coverage.customProviderModule={custom}"]
                if custom
                else ["--coverage.provider=v8"]
            )
        else:
            no_coverage = "@vitest/coverage-v8 is not installed next to the workspace's vitest"
    argv += [*(limits or []), *selection_args(runner, name_filter)]
    if files is not None:
        argv += files
    elif filter_path:
        argv.append(filter_path)
    return argv, no_coverage


async def run_js_runner(
    ws: Workspace,
    pkg: JsPackage,
    runner: str,
    profile: Profile,
    *,
    files: list[str] | None = None,
    filter_path: str | None = None,
    name_filter: NameFilter | None = None,
    coverage: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    workers: int | str | None = None,
    max_failures: int | None = None,
) -> dict[str, Any]:
    """Run one runner in one package.  `files` (package-relative) limits the run to those test files;
    `filter_path` (package-relative) to a file or directory; `name_filter` to tests by name."""
    name_filter = name_filter or NameFilter()
    timeout = timeout or profile.timeout("tests")
    result: dict[str, Any] = {
        "runner": runner,
        "package": pkg.label,
        "status": "ok",
        "counts": empty_counts(),
        "failures": [],
        "skipped": [],
        "notes": [],
    }
    executable = node_tool(runner, pkg.path, ws.root)
    if executable is None:
        result.update(
            status="error",
            error={"code": "tool_missing", "message": f"{runner} is not installed (workspace or bundled toolchain)"},
        )
        return result
    result["executable"] = executable
    result["version"] = tool_version(executable)
    with tempfile.TemporaryDirectory(prefix=f"paradise-{runner}-") as tmpdir:
        tmp = Path(tmpdir)
        limits, result["notes"] = limit_args(runner, workers, max_failures)
        declared, described, notes = declared_flags(pkg.manifest, runner, max_failures)
        if described:
            result["declared_test_script"] = described
        result["notes"] += notes
        limits = [*declared, *limits]
        env = node_env()
        if runner == "jest" and "--bail" in limits:  # jest --bail exits before writing --json
            limits += ["--reporters=default", f"--reporters={_JEST_PARTIAL}"]
            env["PARADISE_JEST_PARTIAL"] = str(tmp / "partial.json")
        argv, no_coverage = runner_argv(
            runner,
            executable,
            pkg,
            ws,
            tmp,
            files=files,
            filter_path=filter_path,
            name_filter=name_filter,
            coverage=coverage,
            limits=limits,
        )
        if no_coverage:
            result["skipped"].append({"what": f"{runner} coverage ({pkg.label})", "reason": no_coverage})
        run = await ToolRun(profile, timeout, progress).run(argv, f"{runner} ({pkg.label})", pkg.path, env)
        result.update(
            command=[Path(argv[0]).name, *argv[1:]],
            exit_code=run.returncode,
            duration_s=run.duration_s,
            timed_out=run.timed_out,
            output_truncated=run.truncated,
        )
        text = read_bounded_file(tmp / "report.json") or read_bounded_file(tmp / "partial.json")
        if not text:
            error = run.failure(timeout, f"{runner} wrote no results (exit {run.returncode}): {run.tail(8)}", runner)
            result.update(status="partial" if run.timed_out else "error", error=error)
            return result
        report = json.loads(text)
        result["deselected"], outside = deselect(report, runner, name_filter)
        if name_filter:
            result["selection"] = name_filter.describe()
        if outside:
            result["notes"].append(f"{outside} test(s) outside the selection ran anyway (type tests) and are left out")
        parsed = parse_js_report(report, ws.relative)
        result["counts"] = parsed["counts"]
        if max_failures and (report.get("partial") or parsed["counts"]["failed"] >= max_failures):
            result["stopped_early"] = True
            result["notes"].append(f"{runner} stopped early: max_failures={max_failures} was reached")
        result["failures"] = parsed["failures"][: profile.max_findings]
        summary = read_bounded_file(tmp / "cov" / "coverage-summary.json")
        if summary:
            cov = parse_jest_coverage(code_only(json.loads(summary)))
            cov["files"] = {ws.relative(k): v for k, v in cov["files"].items()}
            result["coverage"] = cov
        elif coverage and not no_coverage:
            result["skipped"].append({"what": f"{runner} coverage ({pkg.label})", "reason": "no coverage report"})
    return result


async def list_test_files(ws: Workspace, pkg: JsPackage, runner: str) -> tuple[set[str], str]:
    """Workspace-relative test files of `runner` in `pkg`, as the runner lists them with the
    package's own configuration; the runner's default patterns when it cannot list (the second
    element says which)."""
    executable = node_tool(runner, pkg.path, ws.root)
    if executable is not None:
        if runner == "jest":
            argv = [executable, "--listTests", "--json"]
        else:
            argv = [executable, "list", "--filesOnly", "--json"]
            if major_version(tool_version(executable)) >= 5:
                argv.append("--no-fsModuleCache")  # listing must not write into the workspace either
        run = await run_command(argv, cwd=pkg.path, timeout=_LIST_TIMEOUT, env=node_env())
        start = run.stdout.find("[")
        try:
            listed = json.loads(run.stdout[start:]) if start >= 0 and run.returncode == 0 else None
        except json.JSONDecodeError:
            listed = None
        if isinstance(listed, list):
            paths = [item if isinstance(item, str) else item.get("file", "") for item in listed]
            return {ws.relative(p) for p in paths if p}, f"listed by {runner}"
    pattern = default_test_pattern(runner)
    found = {f"{pkg.prefix()}{rel}" for rel in Workspace(pkg.path).files(JS_SUFFIXES) if pattern.search(rel)}
    return found, f"{runner}'s default test patterns ({runner} could not list its tests)"
