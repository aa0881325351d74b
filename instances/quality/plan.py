"""The execution plan of a pytest run: how many pytest-xdist workers (parallel where it pays, serial
for small suites whose run is shorter than the workers' start-up), which tests first (those that
failed last time, then the slowest, from the timings earlier runs left under .paradise/tests), and
when to stop (`max_failures`).  The plan, with the reason for each choice, goes into the reply, and
after the run which worker ran how many tests for how long."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import QualityError
from .js.packages import major_version
from .runner import run_command
from .testhistory import load_timings
from .workspace import Interpreter, Workspace

MIN_PARALLEL_SECONDS = 3.0
"""Estimated serial test time below which workers cost more than they save: starting one xdist
worker (a Python process that imports pytest and collects the suite) takes about a second here."""
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

ORDER_PLUGIN = '''"""Written by the quality instance for one run: runs previously failed tests first, then the
slowest, and notes which worker ran which test."""
import json
import os

_DATA = None
_SEEN = []


def _data():
    global _DATA
    if _DATA is None:
        with open(os.environ["PARADISE_ORDER_FILE"], encoding="utf-8") as handle:
            _DATA = json.load(handle)
    return _DATA


def pytest_collection_modifyitems(session, config, items):
    data = _data()
    first = set(data["first"])
    seconds = data["seconds"]
    default = data["default_s"]

    def key(pair):
        index, item = pair
        return (0 if item.nodeid in first else 1, -seconds.get(item.nodeid, default), index)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _SEEN.append([report.nodeid, round(report.duration, 4)])


def pytest_sessionfinish(session):
    if session.config.pluginmanager.hasplugin("dsession"):
        return  # the xdist controller: its workers write their own lists
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = os.path.join(_data()["out_dir"], "worker-" + worker + ".json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"worker": worker, "tests": _SEEN}, handle)
'''

_probe_cache: dict[tuple[str, float], dict[str, Any]] = {}


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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


def _count_test_functions(ws: Workspace, targets: list[str]) -> int:
    files = [f for f in ws.test_files() if _selected(f, [t.split("::", 1)[0] for t in targets])]
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
            "distribution": "load: each worker gets a chunk of the order below, then more as it frees up"
            if self.mode == "parallel"
            else None,
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
                    "first": tests[0][0] if tests else None,
                }
            )
        return rows


def decide_workers(
    workers: int | str | None, cpus: int, tests: int, serial_s: float | None, load: float = 0.0
) -> tuple[int, str]:
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
    idle = int(cpus - load + 0.5)
    if idle < 2:
        # Measured here: on 2 CPUs already running 6+ other processes, 2 workers took 1.4x the serial time.
        return 1, f"the machine is busy (load {load:.1f} on {cpus} CPUs): workers would only compete for them"
    wanted = min(wanted, idle)
    if serial_s is not None:
        return wanted, f"the last recorded times add up to {serial_s:.1f}s over {tests} tests; {cpus} CPUs"
    return wanted, f"{tests} tests (no recorded times yet); {cpus} CPUs"


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
    """Decide workers and order for one run; writes the order plugin and its data into `tmp`."""
    workers = parse_workers(workers)
    if max_failures is not None and not (isinstance(max_failures, int) and 1 <= max_failures <= 100_000):
        raise QualityError("bad_argument", "max_failures must be an integer between 1 and 100000")
    timings = {n: t for n, t in load_timings(ws).items() if _selected(n, targets)}
    counted = _count_test_functions(ws, targets) if len(timings) < 10 else 0
    tests = max(len(timings), counted)
    known = [t.get("s", 0.0) for t in timings.values()]
    # Timings from a -k run cover only part of the selection; trust them only for most of the suite.
    serial_s = round(sum(known), 3) if timings and not keyword and len(timings) >= 0.5 * tests else None
    cpus = available_cpus()
    load = round(os.getloadavg()[0], 2)
    count, reason = decide_workers(workers, cpus, tests, serial_s, load)
    plan = ExecutionPlan("serial", 1, reason, max_failures=max_failures)
    plan.estimate = {"tests": tests, "recorded_serial_s": serial_s, "cpus": cpus, "load": load}
    if count > 1:
        probe = await probe_xdist(interp.path, ws.root)
        shim = _server_packages()
        if probe.get("xdist"):
            plan.xdist = "workspace" if interp.source == "workspace venv" else "quality environment"
        elif shim and major_version(probe.get("pytest")) >= 7:
            shim_dir = tmp / "xdist-shim"
            shim_dir.mkdir()
            for name, target in shim.items():
                (shim_dir / name).symlink_to(target, target_is_directory=True)
            plan.env["PYTHONPATH"] = str(shim_dir)
            if not any(name.endswith(".dist-info") for name in shim):
                plan.args += ["-p", "xdist.plugin"]  # without its metadata no entry point loads it
            plan.xdist = "quality environment"
        else:
            plan.reason = f"{reason}, but pytest-xdist is not available to {interp.path}; running serially"
            count = 1
    if count > 1:
        plan.mode, plan.workers = "parallel", count
        plan.args += ["-n", str(count), "--dist", "load"]
    failed = sorted(n for n, t in timings.items() if t.get("outcome") in ("failed", "error"))
    by_time = sorted(timings, key=lambda n: -timings[n].get("s", 0.0))
    plan.failed_first, plan.timed_tests = failed, len(timings)
    plan.slowest_first = [f"{n} ({timings[n].get('s', 0.0)}s)" for n in by_time[:10]]
    plugin_dir = tmp / "order-plugin"
    plugin_dir.mkdir()
    (plugin_dir / "paradise_order.py").write_text(ORDER_PLUGIN, encoding="utf-8")
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
