"""The Python project's declared test command, read from where projects declare it (tox.ini, hatch, PDM and
poe scripts, the ini's addopts), split into the flags pytest runs with and the ones the tools own."""

from __future__ import annotations

from pathlib import Path

import pytest

from instances.quality.core.workspace import Workspace
from instances.quality.testing.py_declared import python_declared, split_flags


def _ws(tmp_path: Path, files: dict[str, str]) -> Workspace:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return Workspace.open(tmp_path)


def test_flags_the_tools_own_are_left_out() -> None:
    used, ignored = split_flags(
        ["-q", "-x", "-m", "not slow", "--cov=pkg", "-n", "4", "-p", "xdist", "tests/", "{posargs}"]
    )
    assert used == ["-m", "not slow", "-p", "xdist"]
    assert ignored == ["-q", "-x", "--cov=pkg", "-n", "4", "tests/"]
    assert split_flags(["--runslow", "--import-mode=importlib", "-vv", "--maxfail=2", "-k", "fast"]) == (
        ["--runslow", "--import-mode=importlib"],
        ["-vv", "--maxfail=2", "-k", "fast"],
    )


@pytest.mark.parametrize(
    ("files", "source", "used"),
    [
        (
            {
                "tox.ini": "[tox]\nenvlist = py\n[testenv]\ndeps = pytest\ncommands =\n    pip --version\n"
                "    python -m pytest -m 'not slow' {posargs}\n"
            },
            "tox.ini [testenv] commands",
            ["-m", "not slow"],
        ),
        (
            {"pyproject.toml": "[tool.hatch.envs.default.scripts]\ntest = 'pytest --runslow tests'\n"},
            "pyproject.toml [tool.hatch.envs.default.scripts] test",
            ["--runslow"],
        ),
        (
            {"pyproject.toml": "[tool.pdm.scripts]\ntest = {cmd = 'coverage run -m pytest -p no:randomly -q'}\n"},
            "pyproject.toml [tool.pdm.scripts] test",
            ["-p", "no:randomly"],
        ),
        (
            {"pyproject.toml": "[tool.poe.tasks]\ntest = 'pytest --import-mode=importlib -x'\n"},
            "pyproject.toml [tool.poe.tasks] test",
            ["--import-mode=importlib"],
        ),
    ],
)
def test_each_place_a_project_declares_its_command(tmp_path: Path, files, source: str, used: list[str]) -> None:
    found = python_declared(_ws(tmp_path, files), None)
    assert found is not None and (found.source, found.used) == (source, used)
    assert found.args() == used  # no addopts to rewrite


def test_addopts_keep_their_paths_and_lose_only_the_tools_flags(tmp_path: Path) -> None:
    pyproject = "[tool.pytest.ini_options]\naddopts = \"-x -q -m 'not slow' tests\"\n"
    ws = _ws(tmp_path, {"pyproject.toml": pyproject})
    found = python_declared(ws, tmp_path / "pyproject.toml")
    assert found is not None and found.source == "pyproject.toml addopts"
    assert found.args() == ["-o", "addopts=-m 'not slow' tests"]
    assert found.describe()["flags_not_used"] == ["-x", "-q"]
    harmless = _ws(tmp_path, {"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-ra --strict-markers'\n"})
    assert python_declared(harmless, tmp_path / "pyproject.toml").args() == []  # pytest applies them itself


def test_nothing_declared_is_none(tmp_path: Path) -> None:
    assert python_declared(_ws(tmp_path, {"pyproject.toml": "[project]\nname = 'x'\n"}), None) is None
