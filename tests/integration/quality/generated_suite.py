"""A generated Python project with several hundred tests, for reply sizes, the execution plan, impact
selection and risk: `pkg/mod_<i>.py` with functions `f<j>`, one test file per module calling each
function from its own tests, a top-level conftest.py fixture the tests use (no ini file: a selected
run must still load it), a data file the tests name, an unnamed data file, and a test-like fixture
file under `tests/fixtures/` that pytest's norecursedirs keeps out of the full run."""

from __future__ import annotations

import subprocess
from pathlib import Path

PYPROJECT = """[tool.pytest.ini_options]
norecursedirs = ["fixtures", ".*", "venv"]
"""
CONFTEST = """import pytest


@pytest.fixture
def offset():
    return 1
"""


def _module(i: int, functions: int, lint_noise: int, bandit_noise: int) -> str:
    lines = ["import os", "import sys", "import json"][: min(3, lint_noise)]
    lines += [
        f"from collections import {name}" for name in ("OrderedDict", "deque", "Counter")[: max(0, lint_noise - 3)]
    ]
    lines.append("")
    for j in range(functions):
        body = [f"def f{j}(x, work=0):", "    total = 0", "    for k in range(work):", "        total += k % 7"]
        body += [f"    assert x >= -{10**6}, 'in range'" for _ in range(bandit_noise)]
        body += [f"    return x * {j + 2} + {i} + total * 0", ""]
        lines += body
    return "\n".join(lines) + "\n"


def _tests(i: int, functions: int, per_function: int, work: int, failing: bool) -> str:
    lines = [f"from pkg.mod_{i} import " + ", ".join(f"f{j}" for j in range(functions)), "", ""]
    for j in range(functions):
        for n in range(per_function):
            expected = f"{n} * {j + 2} + {i} + 1"
            if failing and n == 0:
                expected += " + 1000"  # a deliberate, stable failure with a long assertion message
            lines += [
                f"def test_f{j}_{n}(offset):",
                f"    assert f{j}({n}, work={work}) + offset == {expected}, 'f{j}({n}) of module {i}: ' + 'x' * 300",
                "",
                "",
            ]
    return "\n".join(lines)


def write_suite(
    root: Path,
    *,
    modules: int = 40,
    functions: int = 4,
    per_function: int = 3,
    work: int = 0,
    failing_modules: int = 0,
    lint_noise: int = 6,
    bandit_noise: int = 2,
) -> int:
    """Write the project into `root`; returns the number of tests (modules x functions x per_function + 1)."""
    (root / "pkg").mkdir(parents=True, exist_ok=True)
    (root / "tests" / "data").mkdir(parents=True, exist_ok=True)
    (root / "tests" / "fixtures").mkdir(parents=True, exist_ok=True)
    (root / "pkg" / "resources").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (root / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (root / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    for i in range(modules):
        (root / "pkg" / f"mod_{i}.py").write_text(_module(i, functions, lint_noise, bandit_noise), encoding="utf-8")
        (root / "tests" / f"test_mod_{i}.py").write_text(
            _tests(i, functions, per_function, work, i < failing_modules), encoding="utf-8"
        )
    (root / "tests" / "data" / "sample.txt").write_text("alpha\nbeta\n", encoding="utf-8")
    (root / "tests" / "test_data.py").write_text(
        "from pathlib import Path\n\n\ndef test_sample_lines():\n"
        "    text = (Path(__file__).parent / 'data' / 'sample.txt').read_text()\n"
        "    assert text.splitlines() == ['alpha', 'beta']\n",
        encoding="utf-8",
    )
    (root / "pkg" / "resources" / "blob.dat").write_text("opaque\n", encoding="utf-8")
    (root / "pkg" / "loader.py").write_text(
        "from pathlib import Path\n\n\ndef resources():\n"
        "    return sorted(p.name for p in (Path(__file__).parent / 'resources').glob('*'))\n",
        encoding="utf-8",
    )
    (root / "tests" / "fixtures" / "test_not_a_test.py").write_text(
        "import pkg.mod_1  # noqa: F401\n\nraise RuntimeError('fixture data for the tests, not a test module')\n",
        encoding="utf-8",
    )
    return modules * functions * per_function + 1


def git(root: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "PATH": "/usr/bin:/bin",
        "HOME": str(root),
    }
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout


def commit_all(root: Path, message: str) -> None:
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
        (root / ".gitignore").write_text(".paradise/\n", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
