"""Failure risk and its backtest on a history recorded by real pytest runs: a module that keeps
breaking ranks above a fresh change, the inputs are shown, and the backtest reports hits next to a
random pick."""

from __future__ import annotations

from pathlib import Path

from generated_suite import commit_all, write_suite

from instances.quality.core.profiles import load_profiles
from instances.quality.core.workspace import Workspace
from instances.quality.impact.impact import analyze_changes
from instances.quality.impact.risk import backtest_workspace
from instances.quality.testing.testhistory import read_runs
from instances.quality.testing.tests_tool import run_tests

QUICK = load_profiles()["quick"]


async def test_risk_ranks_the_module_with_a_failure_history_and_the_backtest_scores_it(tmp_path: Path) -> None:
    write_suite(tmp_path, modules=6, functions=2, per_function=2)
    commit_all(tmp_path, "generated project")
    ws = Workspace.open(tmp_path)
    module = tmp_path / "pkg" / "mod_2.py"
    good = module.read_text()
    bad = good.replace("return x * 2 + 2", "return x * 2 + 3")
    assert bad != good
    for round_ in range(3):  # break, fix, break, fix, ...: every other run fails in mod_2's tests
        module.write_text(bad, encoding="utf-8")
        broken = await run_tests(ws, QUICK)
        assert broken["counts"]["failed"] == 2
        commit_all(tmp_path, f"break {round_}")
        module.write_text(good, encoding="utf-8")
        assert (await run_tests(ws, QUICK))["counts"]["failed"] == 0
        commit_all(tmp_path, f"fix {round_}")
    runs = read_runs(ws)
    assert len(runs) == 6 and runs[0]["failed"] == ["tests/test_mod_2.py::test_f0_0", "tests/test_mod_2.py::test_f0_1"]

    module.write_text(good.replace("total = 0", "total = 0  # touched"), encoding="utf-8")
    other = tmp_path / "pkg" / "mod_4.py"
    other.write_text(other.read_text().replace("total = 0", "total = 0  # touched"), encoding="utf-8")
    risk = (await analyze_changes(ws, QUICK))["risk"]
    assert [f["path"] for f in risk["files"]] == ["pkg/mod_2.py", "pkg/mod_4.py"]
    top = risk["files"][0]
    assert top["inputs"]["past_failures"] > 0 and top["inputs"]["churn"] == 7  # 1 + 6 commits touched it
    assert risk["files"][1]["inputs"]["past_failures"] == 0
    assert risk["tests"][0]["test"].startswith("tests/test_mod_2.py::test_f0_")
    assert risk["recorded_runs"] == 6 and "heuristic" in risk["method"]

    backtest = await backtest_workspace(ws)
    assert backtest["runs_evaluated"] == 2  # the later failing runs, each with history before it
    assert backtest["hits"] == 2 and backtest["hit_rate"] == 1.0
    assert 0 < backtest["random_pick_hit_rate"] < 0.5
    assert "too few to judge" in backtest["note"]
