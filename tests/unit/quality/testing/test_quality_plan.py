"""The pytest plan's decisions (workers, xdist output) and the full-run config, on constructed inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from instances.quality.core.errors import QualityError
from instances.quality.core.workspace import Workspace
from instances.quality.testing.plan import decide_workers, normalise_xdist_output, parse_workers
from instances.quality.testing.pytestconfig import full_run_config


def test_plan_decisions() -> None:
    assert decide_workers(None, 2, 400, None)[0] == 2
    assert decide_workers(None, 2, 400, None, idle=1.9)[0] == 2  # an idle machine (its load average may say 1.2)
    assert decide_workers(None, 2, 400, None, idle=0.8)[0] == 1  # one CPU left: workers would only compete
    assert "busy (0.1 of 2 CPUs idle)" in decide_workers(None, 2, 400, 50.0, idle=0.1)[1]
    assert decide_workers(None, 8, 400, 50.0, idle=3.0)[0] == 3
    assert decide_workers(None, 2, 40, None) == (1, "40 tests and no recorded times: too few for workers to pay off")
    assert decide_workers(None, 2, 400, 1.2)[0] == 1
    assert decide_workers(None, 1, 400, 50.0) == (1, "only one CPU is available")
    assert decide_workers("auto", 4, 10, None)[0] == 4
    assert decide_workers(3, 2, 10, None) == (3, "workers=3 was asked for")
    assert parse_workers("2") == 2
    with pytest.raises(QualityError):
        parse_workers("many")
    line = "[gw1] [ 50%] FAILED tests/test_a.py::test_x"
    assert "tests/test_a.py::test_x FAILED" in normalise_xdist_output(line)


def test_full_run_config_finds_the_ini_and_honours_norecursedirs(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\nnorecursedirs = ["fixtures"]\n', encoding="utf-8"
    )
    config = full_run_config(Workspace.open(tmp_path))
    assert config.inifile == tmp_path / "pyproject.toml"
    assert config.args() == ["-c", str(tmp_path / "pyproject.toml"), f"--rootdir={tmp_path}"]
    assert config.collects("tests/test_a.py")
    assert not config.collects("tests/fixtures/test_b.py")
    assert not config.collects("examples/test_c.py")  # outside testpaths
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    bare = full_run_config(Workspace.open(tmp_path))
    assert bare.inifile is None and bare.rootdir == tmp_path and bare.collects("examples/test_c.py")
