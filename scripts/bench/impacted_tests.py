"""Benchmark: impacted-test selection vs the full suite on a generated workspace.

Generates a git repository with N modules in layers (each module imports one or two modules of the
layer below) and 5 tests per module, commits it, then changes one module of a middle layer so that
its result is wrong.  It times the quality instance's `run_impacted_tests` (git diff + import graph
+ pytest on the selected files) against the full suite, and checks that every failing test the full
suite finds is also found by the impacted run.

    .venv/bin/python -m scripts.bench.impacted_tests [--modules 40] [--tests-per-module 5]
        [--test-cost-ms 10] [--repeat 3] [--server-python] [--keep DIR]

Each test sleeps --test-cost-ms to stand for the I/O a real test does; with 0 the comparison is
dominated by pytest's start-up time.  The workspace gets a `.venv` holding only pytest, as a project's
own environment does (--server-python: none, so the tests run on this development environment, whose
autoloaded pytest plugins add about 3.5 s to every pytest process, full and impacted alike).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from instances.quality.core.profiles import load_profiles
from instances.quality.core.workspace import Workspace
from instances.quality.impact.impact import run_impacted_tests
from instances.quality.testing.tests_tool import run_pytest
from scripts.bench.common import suite_arguments
from tests.helpers import PYTEST_PACKAGES, lean_venv

GIT = [
    "git",
    "-c",
    "user.name=bench",
    "-c",
    "user.email=bench@example.com",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "init.defaultBranch=main",
]
LAYERS = 5


def _layout(modules: int, seed: int) -> dict[int, list[int]]:
    """Module index -> indexes of the modules it imports (from the layer below)."""
    rng = random.Random(seed)
    per_layer = max(modules // LAYERS, 1)
    deps: dict[int, list[int]] = {}
    for i in range(modules):
        layer = min(i // per_layer, LAYERS - 1)
        below = [j for j in range(modules) if min(j // per_layer, LAYERS - 1) == layer - 1]
        deps[i] = sorted(rng.sample(below, k=min(len(below), rng.choice((1, 2))))) if below else []
    return deps


def _value(i: int, x: int, deps: dict[int, list[int]], bias: dict[int, int]) -> int:
    return x + i + bias.get(i, 0) + sum(_value(d, x, deps, bias) % 97 for d in deps[i])


def generate(root: Path, modules: int, tests_per_module: int, cost_ms: int, seed: int) -> dict[int, list[int]]:
    deps = _layout(modules, seed)
    (root / "bench").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "bench" / "__init__.py").write_text("")
    for i, imported in deps.items():
        imports = "".join(f"from bench import m{d}\n" for d in imported)
        calls = "".join(f" + m{d}.value(x) % 97" for d in imported)
        (root / "bench" / f"m{i}.py").write_text(
            f"{imports}\n\nBIAS = 0\n\n\ndef value(x):\n    return x + {i} + BIAS{calls}\n"
        )
        tests = [f"import time\n\nfrom bench.m{i} import value\n"]
        for k in range(tests_per_module):
            expected = _value(i, k, deps, {})
            tests.append(
                f"\n\ndef test_m{i}_{k}():\n    time.sleep({cost_ms / 1000!r})\n    assert value({k}) == {expected}\n"
            )
        (root / "tests" / f"test_m{i}.py").write_text("".join(tests))
    subprocess.run([*GIT, "init", "-q"], cwd=root, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "generated"], cwd=root, check=True)
    return deps


async def measure(root: Path, repeat: int) -> dict[str, object]:
    ws = Workspace.open(root)
    profile = load_profiles()["quick"]
    full_times, impacted_times = [], []
    full = impacted = None
    for _ in range(repeat):
        started = time.perf_counter()
        full = await run_pytest(ws, profile, coverage=False)
        full_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        impacted = await run_impacted_tests(ws, profile, coverage=False)
        impacted_times.append(time.perf_counter() - started)
    assert full is not None and impacted is not None
    return {
        "full": full,
        "impacted": impacted,
        "full_s": statistics.median(full_times),
        "impacted_s": statistics.median(impacted_times),
    }


def main() -> int:
    parser = suite_arguments(__doc__, modules=40, tests_per_module=5, test_cost_ms=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--server-python", action="store_true", help="no workspace .venv: run the tests with this environment's python"
    )
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="paradise-bench-"))
    try:
        deps = generate(root, args.modules, args.tests_per_module, args.test_cost_ms, args.seed)
        if not args.server_python:  # a project's own environment, not this one's autoloaded pytest plugins
            (root / ".git" / "info" / "exclude").write_text(".venv/\n", encoding="utf-8")
            lean_venv(root, PYTEST_PACKAGES)
        changed = args.modules // 2  # a module in the middle layer
        path = root / "bench" / f"m{changed}.py"
        path.write_text(path.read_text().replace("BIAS = 0", "BIAS = 1  # the introduced bug"))
        result = asyncio.run(measure(root, args.repeat))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    full, impacted = result["full"], result["impacted"]
    full_failed = set(full["failed_tests"])
    impacted_failed = set((impacted.get("tests") or {}).get("failed_tests", []))
    missed = sorted(full_failed - impacted_failed)
    dependents = sum(1 for i in deps if changed in deps[i])
    full_s, impacted_s = result["full_s"], result["impacted_s"]
    print(
        f"workspace: {args.modules} modules in {LAYERS} layers, {full['counts']['total']} tests "
        f"({args.tests_per_module} per module, {args.test_cost_ms} ms each), git repository; python: "
        + ("this environment's" if args.server_python else "the workspace's .venv (pytest)")
    )
    print(f"change: bench/m{changed}.py (imported directly by {dependents} module(s)), result made wrong")
    print(
        f"selection: mode={impacted['mode']}, {len(impacted['selected_tests'])} of "
        f"{impacted['total_test_files']} test files, {impacted['counts']['total']} tests"
    )
    print(f"full suite:     {full_s:6.2f} s  ({full['counts']['failed']} failed, {full['counts']['passed']} passed)")
    print(
        f"impacted tests: {impacted_s:6.2f} s  ({impacted['counts']['failed']} failed, "
        f"{impacted['counts']['passed']} passed; includes git diff and import-graph analysis)"
    )
    print(f"faster: {100.0 * (1 - impacted_s / full_s):.1f}% (median of {args.repeat} runs each)")
    print(
        f"failing tests found: full {len(full_failed)}, impacted {len(impacted_failed)}, missed {len(missed)}"
        + (f": {missed}" if missed else "")
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
