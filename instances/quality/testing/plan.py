"""The execution plan of a pytest run: how many processes (parallel where it pays: serial for small
suites whose run is shorter than a process's start-up, or when the CPUs are busy), how the tests
are shared out, which tests first (those that failed last time, then the slowest, from the timings
earlier runs left under .paradise/tests), and when to stop (`max_failures`).  The plan, with the
reason for each choice, goes into the reply, and after the run which process ran how many tests for
how long.

A parallel run is split by file where it can: N plain pytest processes, each running whole test
files (shards.py runs them and merges their results).  Measured on two CPUs, that takes about 0.6x
the serial time (attrs' 1,347 tests: 0.59x) where two pytest-xdist workers take 1.1-1.2x: xdist's
per-test messaging between controller and workers costs about as much CPU as a short test itself.
xdist (the workspace's, or the quality environment's lent to it) remains for a selection of fewer
files than workers."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.cpus import available_cpus, idle_cpus
from ..core.errors import QualityError
from ..core.js_packages import major_version
from ..core.runner import run_command
from ..core.workspace import Interpreter, Workspace
from .testhistory import load_timings

MIN_PARALLEL_SECONDS = 3.0
"""Estimated serial test time below which workers cost more than they save: starting one more
pytest process (it imports pytest and collects the suite) takes about a second here."""
MIN_PARALLEL_TESTS = 150
"""Without timings from an earlier run: suites smaller than this run serially."""
MAX_WORKERS = 8
_TESTS_PER_WORKER = 20
_TEST_DEF = re.compile(r"^\s*(?:async\s+)?def\s+test", re.MULTILINE)
_XDIST_LINE = re.compile(r"^\[gw\d+\] (?:\[\s*\d+%\] )?(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+::\S.*)$", re.M)
_PROBE = (
    "import json, importlib.util as u\n"
    "import pytest\n"
    "print(json.dumps({'pytest': pytest.__version__, 'xdist': u.find_spec('xdist') is not None}))"
)


_probe_cache: dict[tuple[str, float], dict[str, Any]] = {}


def parse_workers(value: int | str | None) -> int | str | None:
    """None (decide), "auto" (one per CPU) or a count; anything else is a bad argument."""
    if value is None or value == "auto":
        return value
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 64:
        return value
    raise QualityError("bad_argument", 'workers must be "auto" or an integer between 0 and 64')


async def probe_xdist(python: str, root: Path) -> dict[str, Any]:
    """{"pytest": version, "xdist": installed?} for the interpreter that runs the tests (cached)."""
    try:
        stamp = os.stat(python).st_mtime
    except OSError:
        stamp = 0.0
    key = (python, stamp)
    if key not in _probe_cache:
        run = await run_command([python, "-c", _PROBE], cwd=root, timeout=30)
        try:
            _probe_cache[key] = json.loads(run.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            _probe_cache[key] = {"pytest": None, "xdist": False}
    return _probe_cache[key]


def _server_packages() -> dict[str, str] | None:
    """Package directories of xdist and execnet in the server's own environment (the `quality`
    extra installs them), for a workspace interpreter that lacks them."""
    try:
        import execnet
        import xdist
    except ImportError:
        return None
    packages = {"xdist": Path(xdist.__file__).parent, "execnet": Path(execnet.__file__).parent}
    found = {name: str(path) for name, path in packages.items()}
    for pattern in ("pytest_xdist-*.dist-info", "execnet-*.dist-info"):  # for importlib.metadata lookups
        for info in packages["xdist"].parent.glob(pattern):
            found[info.name] = str(info)
    return found


def _selected(nodeid: str, targets: list[str]) -> bool:
    if not targets:
        return True
    return any(nodeid == t or nodeid.startswith((t.rstrip("/") + "/", t + "::")) for t in targets)


def file_of(nodeid: str) -> str:
    # paradise_order.py has the same one-liner: it runs in the workspace's interpreter and imports
    # nothing of this package, and importing it here would import pytest into the server.
    return nodeid.split("::", 1)[0]


def _selected_files(ws: Workspace, targets: list[str]) -> list[str]:
    return [f for f in ws.test_files() if _selected(f, [file_of(t) for t in targets])]


def _count_test_functions(ws: Workspace, files: list[str]) -> int:
    total = 0
    for rel in files[:5000]:
        try:
            total += len(_TEST_DEF.findall((ws.root / rel).read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    return total


@dataclass
class ExecutionPlan:
    mode: str  # "serial" or "parallel"
    workers: int
    reason: str
    split: str | None = None  # how a parallel run is shared out: "files" (shards.py) or "tests" (xdist)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    xdist: str | None = None  # where xdist comes from: "workspace" or "quality environment"
    failed_first: list[str] = field(default_factory=list)
    slowest_first: list[str] = field(default_factory=list)
    timed_tests: int = 0
    estimate: dict[str, Any] = field(default_factory=dict)
    max_failures: int | None = None
    out_dir: Path | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "workers": self.workers,
            "reason": self.reason,
            "xdist": self.xdist,
            "split": self.split,
            "distribution": _DISTRIBUTION.get(self.split or "", "").format(n=self.workers) or None,
            "order": {
                "failed_first": self.failed_first[:20],
                "failed_first_count": len(self.failed_first),
                "slowest_first": self.slowest_first[:10],
                "timed_tests": self.timed_tests,
                "rule": "tests that failed in the last recorded run, then the slowest by recorded time",
            },
            "estimate": self.estimate,
            "max_failures": self.max_failures,
        }

    def distribution(self) -> list[dict[str, Any]]:
        """Which worker ran how many tests and for how long (from the order plugin's files)."""
        if self.out_dir is None:
            return []
        rows = []
        for path in sorted(self.out_dir.glob("worker-*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            tests = data.get("tests", [])
            rows.append(
                {
                    "worker": data.get("worker"),
                    "tests": len(tests),
                    "seconds": round(sum(t[1] for t in tests), 3),
                    "files": data.get("files"),
                    "first": tests[0][0] if tests else None,
                }
            )
        return rows


_DISTRIBUTION = {
    "files": (
        "by file: {n} pytest processes, each running whole test files, shared out by recorded time (the "
        "costliest file first, each to the process with the least so far); each process runs its share in "
        "the order below, and max_failures counts per process"
    ),
    "tests": "by test (pytest-xdist, load): each worker gets a chunk of the order below, then more as it frees up",
}


def decide_workers(
    workers: int | str | None, cpus: int, tests: int, serial_s: float | None, idle: float | None = None
) -> tuple[int, str]:
    """How many processes, and why.  `idle` is the CPUs' worth of idle time measured just before the
    run (cpus.idle_cpus); None when not measured (yet)."""
    if isinstance(workers, int):
        return workers, f"workers={workers} was asked for"
    if workers == "auto":
        return cpus, f"workers='auto': one per CPU ({cpus})"
    if cpus < 2:
        return 1, "only one CPU is available"
    wanted = max(1, min(cpus, MAX_WORKERS, tests // _TESTS_PER_WORKER))
    if serial_s is not None and serial_s < MIN_PARALLEL_SECONDS:
        return 1, (
            f"the last recorded times add up to {serial_s:.1f}s, under {MIN_PARALLEL_SECONDS:g}s: "
            "starting workers would cost more than it saves"
        )
    if serial_s is None and tests < MIN_PARALLEL_TESTS:
        return 1, f"{tests} tests and no recorded times: too few for workers to pay off"
    free = cpus if idle is None else int(idle + 0.5)
    if free < 2:
        # Measured here: on 2 CPUs already running 6+ other processes, 2 workers took 1.4x the serial time.
        return 1, f"the machine is busy ({idle:.1f} of {cpus} CPUs idle): workers would only compete for them"
    wanted = min(wanted, free)
    if serial_s is not None:
        return wanted, f"the last recorded times add up to {serial_s:.1f}s over {tests} tests; {cpus} CPUs"
    return wanted, f"{tests} tests (no recorded times yet); {cpus} CPUs"


async def _use_xdist(plan: ExecutionPlan, ws: Workspace, interp: Interpreter, tmp: Path) -> bool:
    """Make pytest-xdist available to the run (the workspace's, or the quality environment's lent
    through PYTHONPATH); False when neither can be used."""
    probe = await probe_xdist(interp.path, ws.root)
    shim = _server_packages()
    if probe.get("xdist"):
        plan.xdist = "workspace" if interp.source == "workspace venv" else "quality environment"
        return True
    if not shim or major_version(probe.get("pytest")) < 7:
        return False
    shim_dir = tmp / "xdist-shim"
    shim_dir.mkdir()
    for name, target in shim.items():
        (shim_dir / name).symlink_to(target, target_is_directory=True)
    plan.env["PYTHONPATH"] = str(shim_dir)
    if not any(name.endswith(".dist-info") for name in shim):
        plan.args += ["-p", "xdist.plugin"]  # without its metadata no entry point loads it
    plan.xdist = "quality environment"
    return True


async def _split(plan: ExecutionPlan, count: int, files: int, ws: Workspace, interp: Interpreter, tmp: Path) -> None:
    """Share a parallel run out by file where there are enough files, else by test with xdist."""
    if files >= count:
        plan.mode, plan.workers, plan.split = "parallel", count, "files"
    elif await _use_xdist(plan, ws, interp, tmp):
        plan.mode, plan.workers, plan.split = "parallel", count, "tests"
        plan.args += ["-n", str(count), "--dist", "load"]
        plan.reason += f"; {files} test file(s) for {count} workers: shared out by test"
    elif files >= 2:
        plan.mode, plan.workers, plan.split = "parallel", files, "files"
        plan.reason += f"; only {files} test files and no pytest-xdist for {interp.path}: {files} processes"
    else:
        plan.reason += f", but the selection is one file and pytest-xdist is not available to {interp.path}; serial"


async def make_plan(
    ws: Workspace,
    interp: Interpreter,
    tmp: Path,
    *,
    targets: list[str],
    keyword: str | None,
    workers: int | str | None = None,
    max_failures: int | None = None,
) -> ExecutionPlan:
    """Decide processes, split and order for one run; writes the order plugin and its data into `tmp`."""
    workers = parse_workers(workers)
    if max_failures is not None and not (isinstance(max_failures, int) and 1 <= max_failures <= 100_000):
        raise QualityError("bad_argument", "max_failures must be an integer between 1 and 100000")
    timings = {n: t for n, t in load_timings(ws).items() if _selected(n, targets)}
    files = _selected_files(ws, targets)
    counted = _count_test_functions(ws, files) if len(timings) < 10 else 0
    tests = max(len(timings), counted)
    known = [t.get("s", 0.0) for t in timings.values()]
    # Timings from a -k run cover only part of the selection; trust them only for most of the suite.
    serial_s = round(sum(known), 3) if timings and not keyword and len(timings) >= 0.5 * tests else None
    cpus = available_cpus()
    count, reason = decide_workers(workers, cpus, tests, serial_s)
    idle = None
    if count > 1 and workers is None:  # worth running in parallel: are the CPUs free for it?
        idle = await idle_cpus()
        count, reason = decide_workers(workers, cpus, tests, serial_s, idle)
    plan = ExecutionPlan("serial", 1, reason, max_failures=max_failures)
    plan.estimate = {"tests": tests, "recorded_serial_s": serial_s, "cpus": cpus, "idle_cpus": idle}
    if count > 1:
        test_files = {file_of(n) for n in timings} | set(files)
        await _split(plan, count, len(test_files), ws, interp, tmp)
    failed = sorted(n for n, t in timings.items() if t.get("outcome") in ("failed", "error"))
    by_time = sorted(timings, key=lambda n: -timings[n].get("s", 0.0))
    plan.failed_first, plan.timed_tests = failed, len(timings)
    plan.slowest_first = [f"{n} ({timings[n].get('s', 0.0)}s)" for n in by_time[:10]]
    plugin_dir = tmp / "order-plugin"
    plugin_dir.mkdir()
    shutil.copyfile(Path(__file__).with_name("paradise_order.py"), plugin_dir / "paradise_order.py")
    plan.out_dir = tmp / "workers"
    plan.out_dir.mkdir()
    median = sorted(known)[len(known) // 2] if known else 0.0
    order = {
        "first": failed,
        "seconds": {n: t.get("s", 0.0) for n, t in timings.items()},
        "default_s": median,  # a test never timed sorts like a typical one
        "out_dir": str(plan.out_dir),
    }
    (tmp / "order.json").write_text(json.dumps(order), encoding="utf-8")
    plan.env["PARADISE_ORDER_FILE"] = str(tmp / "order.json")
    plan.env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(plugin_dir), plan.env.get("PYTHONPATH"), os.environ.get("PYTHONPATH")) if p
    )
    plan.args += ["-p", "paradise_order"]
    if max_failures:
        plan.args.append(f"--maxfail={max_failures}")
    return plan


def normalise_xdist_output(stdout: str) -> str:
    """xdist's `-v` lines ("[gw0] [ 50%] PASSED a.py::t") in plain pytest's form ("a.py::t PASSED"),
    so the timeout parser reads a parallel run's partial output too."""
    extra = "\n".join(f"{m.group(2)} {m.group(1)}" for m in _XDIST_LINE.finditer(stdout))
    return f"{stdout}\n{extra}" if extra else stdout
