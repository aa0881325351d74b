"""A pytest run split by file (plan.py's split "files"): N plain pytest processes at once, one result.

Every process runs with the serial run's arguments (same rootdir, ini file, conftest files, `-k`)
and the order plugin (paradise_order.py) keeps its share of the files: timed files are shared
before collection, never-timed ones after it.  Their results become one run:

- the junit reports, into one report (a collection error every process saw counted once);
- the exit codes, the most serious first;
- coverage: each process writes its own data file in its own directory (pytest-cov combines the
  `.coverage.*` files next to its data file when it finishes, and would swallow a neighbour's), then
  one `coverage combine` + JSON report in the workspace's interpreter, so the coverage version that
  wrote the data also reads it."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET  # nosec B405 - parses only junit files pytest wrote into our temp dir
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.runner import RunResult
from ..core.toolrun import ToolRun

_EXIT_PRIORITY = (None, 3, 4, 2, 1, 0)
"""Most serious first: killed or never started, internal error, usage error, interrupted (often a
collection error), tests failed, all passed.  5 (no tests collected) only when no process ran any."""

_COMBINE = (
    "import sys, coverage\n"
    "cov = coverage.Coverage(config_file=sys.argv[1] or True)\n"  # True: the workspace's own config files
    "cov.combine(sys.argv[3:])\n"
    "cov.save()\n"
    "cov.json_report(outfile=sys.argv[2])\n"
)


def merge_exit_codes(codes: list[int | None]) -> int | None:
    for code in _EXIT_PRIORITY:
        if code in codes:
            return code
    return 5 if codes and all(c == 5 for c in codes) else max((c for c in codes if c is not None), default=None)


def merge_runs(runs: list[RunResult]) -> RunResult:
    """One RunResult for processes that ran side by side: the first one's command, the merged exit
    code, every process's output (each under a header), the longest duration."""
    if len(runs) == 1:
        return runs[0]
    errors = [r.error for r in runs if r.error]

    def joined(part: str) -> str:
        return "\n".join(f"==== process {i} of {len(runs)} ====\n{getattr(r, part)}" for i, r in enumerate(runs))

    return RunResult(
        argv=runs[0].argv,
        returncode=merge_exit_codes([r.returncode for r in runs]),
        stdout=joined("stdout"),
        stderr=joined("stderr"),
        duration_s=max(r.duration_s for r in runs),
        timed_out=any(r.timed_out for r in runs),
        truncated=any(r.truncated for r in runs),
        missing=any(r.missing for r in runs),
        error=errors[0] if errors else None,
    )


def _case_key(case: ET.Element) -> tuple[str | None, ...]:
    return (case.get("classname"), case.get("name"), case.get("file"), case.get("line"))


def merge_junit(parts: list[Path], out: Path) -> bool:
    """Write one junit report from the processes' reports; False when none left a readable one.
    A test case seen twice (a collection error reported by every process) is kept once."""
    merged = ET.Element("testsuites")
    seen: set[tuple[str | None, ...]] = set()
    for path in parts:
        try:
            root = ET.parse(path).getroot()  # nosec B314  # noqa: S314 - written by pytest in our temp dir
        except (OSError, ET.ParseError):
            continue
        for suite in [root] if root.tag == "testsuite" else root.findall("testsuite"):
            for case in suite.findall("testcase"):
                key = _case_key(case)
                if key in seen:
                    suite.remove(case)
                seen.add(key)
            merged.append(suite)
    if not len(merged):
        return False
    ET.ElementTree(merged).write(out, encoding="utf-8", xml_declaration=True)
    return True


@dataclass(frozen=True)
class SplitRun:
    """`count` pytest processes of one run, each with its own directory under `tmp`."""

    tmp: Path
    count: int

    def directory(self, index: int) -> Path:
        return self.tmp / f"shard-{index}"

    def junit(self, index: int) -> Path:
        return self.directory(index) / "junit.xml"

    async def run(
        self, argv_for: Callable[[int], list[str]], env: Mapping[str, str], tool: ToolRun, cwd: Path
    ) -> list[RunResult]:
        """Run the processes side by side; process i gets PARADISE_SHARD="i/count" and its own
        coverage data file.  Only the first sends progress heartbeats (one "pytest" job to watch)."""
        quiet = ToolRun(tool.profile, tool.timeout)
        runs = []
        for index in range(self.count):
            self.directory(index).mkdir()
            own = {"PARADISE_SHARD": f"{index}/{self.count}", "COVERAGE_FILE": str(self.directory(index) / ".coverage")}
            label, bounds = ("pytest", tool) if index == 0 else (None, quiet)
            runs.append(bounds.run(argv_for(index), label, cwd, {**env, **own}))
        return list(await asyncio.gather(*runs))

    def merge_junit(self, out: Path) -> bool:
        return merge_junit([self.junit(i) for i in range(self.count)], out)

    async def combine_coverage(
        self, python: str, rcfile: Path | None, tool: ToolRun, cwd: Path, env: Mapping[str, str]
    ) -> str | None:
        """Combine the processes' coverage data into tmp/.coverage and report it to
        tmp/coverage.json; None when done, else why not (for the reply's notes)."""
        parts = [self.directory(i) / ".coverage" for i in range(self.count)]
        parts = [p for p in parts if p.is_file()]
        if not parts:
            return "no test process left coverage data"
        report = self.tmp / "coverage.json"
        argv = [python, "-c", _COMBINE, str(rcfile or ""), str(report), *map(str, parts)]
        run = await tool.run(argv, None, cwd, {**env, "COVERAGE_FILE": str(self.tmp / ".coverage")})
        if run.returncode != 0 or not report.is_file():
            why = run.problem(tool.timeout, "coverage") or run.tail(3)
            return f"the test processes' coverage could not be combined: {why}"
        return None
