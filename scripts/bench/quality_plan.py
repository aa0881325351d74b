"""Benchmark: the quality instance's default pytest execution plan against a serial run.

Also times workers="auto" (always one process per CPU), since the default plan runs serially when
the CPUs are already busy.  Generates a workspace of --modules x --tests-per-module CPU-bound tests
(each spins for about --test-cost-ms of pure-Python arithmetic, so processes compete for the CPUs as
real unit tests do) with a `.venv` holding only pytest and pytest-cov, as a project's own
environment does (--server-python: none, so the tests run on this development environment, whose
many autoloaded pytest plugins cost every pytest process about 3.5 s of start-up), records one run
(the plan then orders by and decides from the recorded times), then times --repeat rounds of
`run_pytest` calls: workers=0 (serial), the default plan and workers="auto".  Prints the medians,
their ratios and the plan's reason.

--project NAME==VERSION runs the same rounds on a real open-source project instead: its source
distribution from PyPI, unpacked, with a `.venv` of pytest, pytest-cov, --project-deps and the project
itself (pip, from PyPI).  Its own failing tests are allowed; every run must count the same.

    .venv/bin/python -m scripts.bench.quality_plan [--modules 20] [--tests-per-module 20]
        [--test-cost-ms 20] [--repeat 3] [--coverage] [--server-python] [--keep DIR]
        [--project attrs==25.3.0 --project-deps hypothesis]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from instances.quality.core.cpus import available_cpus, idle_cpus
from instances.quality.core.profiles import load_profiles
from instances.quality.core.workspace import Workspace
from instances.quality.testing.tests_tool import run_pytest
from scripts.bench.common import suite_arguments
from tests.helpers import PYTEST_PACKAGES, lean_venv

TEST_FILE = """import time


def spin(ms):
    deadline = time.process_time() + ms / 1000.0
    total = 0
    while time.process_time() < deadline:
        total += sum(k * k % 7 for k in range(200))
    return total


{tests}
"""


def generate(root: Path, modules: int, per_module: int, cost_ms: int) -> int:
    (root / "tests").mkdir(parents=True, exist_ok=True)
    for m in range(modules):
        tests = "\n\n".join(f"def test_case_{m}_{n}():\n    assert spin({cost_ms}) > 0" for n in range(per_module))
        (root / "tests" / f"test_cpu_{m}.py").write_text(TEST_FILE.format(tests=tests), encoding="utf-8")
    return modules * per_module


def real_project(root: Path, spec: str, deps: list[str]) -> Path:
    """`spec`'s source distribution unpacked under `root`, with a `.venv` holding pytest, pytest-cov,
    `deps` and the project, and a git repository (the quality instance records runs by commit)."""
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    sdist = root / "sdist"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "download", "-q", "--no-deps", "--no-binary", ":all:", spec, "-d", str(sdist)], **quiet)
    shutil.unpack_archive(next(sdist.iterdir()), root / "src")
    project = next((root / "src").iterdir())
    subprocess.run([sys.executable, "-m", "venv", str(project / ".venv")], **quiet)
    install = [str(project / ".venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*install, "pytest", "pytest-cov", *deps], **quiet)
    subprocess.run([*install, "--no-deps", str(project)], **quiet)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@127.0.0.1"]
    subprocess.run([*git, "init", "-q"], cwd=project, **quiet)
    (project / ".git" / "info" / "exclude").write_text(".venv/\n", encoding="utf-8")
    for step in (["add", "-A", "."], ["commit", "-q", "-m", spec]):
        subprocess.run([*git, *step], cwd=project, **quiet)
    return project


async def timed(ws: Workspace, workers: int | str | None, coverage: bool, expect: dict) -> tuple[float, dict]:
    """One run, whose counts must include `expect` (the generated suite: no failures; a real project:
    what its first run counted)."""
    profile = load_profiles()["quick"]
    started = time.monotonic()
    result = await run_pytest(ws, profile, coverage=coverage, workers=workers)
    elapsed = time.monotonic() - started
    counts = result["counts"]
    if result["status"] not in ("ok", "partial") or any(counts.get(k) != v for k, v in expect.items()):
        raise SystemExit(f"the run counted {counts}, expected {expect}: {result.get('error')}")
    return elapsed, result


async def bench(args: argparse.Namespace) -> None:
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-plan-"))
    try:
        if args.project:
            ws = Workspace.open(real_project(root, args.project, args.project_deps))
            suite = f"{args.project} from PyPI"
        else:
            tests = generate(root, args.modules, args.tests_per_module, args.test_cost_ms)
            if not args.server_python:
                lean_venv(root, (*PYTEST_PACKAGES, "coverage", "pytest_cov"))
            ws = Workspace.open(root)
            suite = f"{tests} CPU-bound tests of ~{args.test_cost_ms} ms"
        idle = await idle_cpus(1.0)
        print(f"machine: {available_cpus()} CPUs, {idle} idle, load {os.getloadavg()[0]:.2f}; workspace {root}")
        python = (
            "the server's own (its plugins load in every pytest process)"
            if args.server_python
            else "the workspace's .venv: pytest, pytest-cov" + "".join(f", {d}" for d in args.project_deps)
        )
        print(f"suite: {suite}; coverage={args.coverage}; python {python}")
        # The first run records the times the default plan decides and orders by.
        _, first = await timed(ws, 0, args.coverage, {} if args.project else {"failed": 0, "errors": 0})
        expect = first["counts"]
        print(f"first run: {first['counts']}")
        serial, default, forced, plan = [], [], [], {}
        for _ in range(args.repeat):
            idle = await idle_cpus(1.0)
            serial.append((await timed(ws, 0, args.coverage, expect))[0])
            seconds, result = await timed(ws, None, args.coverage, expect)
            default.append(seconds)
            plan = result["plan"]
            forced.append((await timed(ws, "auto", args.coverage, expect))[0])
            print(
                f"  round: {idle} CPUs idle; serial {serial[-1]:.2f}s, default ({plan['mode']}) {seconds:.2f}s, "
                f"workers=auto {forced[-1]:.2f}s",
                flush=True,
            )
        s, d = statistics.median(serial), statistics.median(default)
        print(f"serial  (workers=0): median {s:.2f}s  runs {[round(x, 2) for x in serial]}")
        label = f"default ({plan['mode']}, {plan['workers']} workers)"
        print(f"{label}: median {d:.2f}s  runs {[round(x, 2) for x in default]}")
        f = statistics.median(forced)
        print(f"workers='auto' (always parallel): median {f:.2f}s  runs {[round(x, 2) for x in forced]}")
        print(f"default / serial = {d / s:.2f}; parallel / serial = {f / s:.2f}")
        print(f"plan: {plan['reason']}; split by {plan['split']}; xdist from {plan['xdist']}")
        used = plan["workers_used"]
        shares = (f"{w['worker']} {w['files']} files {w['tests']} tests {w['seconds']}s" for w in used)
        print("processes:", ", ".join(shares))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = suite_arguments(__doc__, modules=20, tests_per_module=20, test_cost_ms=20)
    parser.add_argument("--coverage", action="store_true")
    parser.add_argument(
        "--server-python", action="store_true", help="no workspace .venv: run the tests with this environment's python"
    )
    parser.add_argument("--project", help="NAME==VERSION: a real project's sdist from PyPI, not the generated suite")
    parser.add_argument("--project-deps", nargs="*", default=[], help="what its tests need besides pytest")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
