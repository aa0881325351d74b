"""The execution plan and impact selection on generated projects, with real pytest runs: parallel by
default on a suite of several hundred tests, serial for a tiny one, failed tests first, early stop;
a regression in one module found exactly by the impacted run (per test function, from recorded
coverage) in a fraction of the full run's time; data files mapped or falling back to the full suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from generated_suite import commit_all, write_suite

from instances.quality.impact import run_impacted_tests
from instances.quality.profiles import load_profiles
from instances.quality.tests_tool import run_tests
from instances.quality.workspace import Workspace

PROFILES = load_profiles()


def failed_set(result: dict) -> set[str]:
    section = result["runners"]["python"] if "runners" in result else result
    return set(section["failed_tests"])


@pytest.fixture
def project(tmp_path: Path) -> Workspace:
    write_suite(tmp_path, modules=40, failing_modules=2)  # 481 tests, 8 of them failing
    commit_all(tmp_path, "generated project")
    return Workspace.open(tmp_path)


async def test_default_plan_is_parallel_failed_first_and_stops_early(project: Workspace) -> None:
    first = await run_tests(project, PROFILES["quick"])
    plan = first["runners"]["python"]["plan"]
    # 481 tests and 2 CPUs: parallel, unless other work already keeps the CPUs busy
    if plan["mode"] == "serial":
        assert "busy" in plan["reason"] and plan["estimate"]["load"] > 0.5, plan
    else:
        assert plan["workers"] == 2 and len(plan["workers_used"]) == 2, plan
    assert sum(w["tests"] for w in plan["workers_used"]) == first["counts"]["total"] == 481
    failing = failed_set(first)
    assert len(failing) == 8

    second = await run_tests(project, PROFILES["quick"], workers="auto")  # parallel whatever the load
    plan = second["runners"]["python"]["plan"]
    assert (plan["mode"], plan["workers"], len(plan["workers_used"])) == ("parallel", 2, 2), plan
    assert plan["order"]["failed_first"] == sorted(failing)
    assert plan["order"]["timed_tests"] == 481
    # xdist hands out consecutive chunks of the ordered list: one worker starts with a failed test
    assert any(w["first"] in failing for w in plan["workers_used"]), plan["workers_used"]

    serial = await run_tests(project, PROFILES["quick"], workers=0, max_failures=1)
    plan = serial["runners"]["python"]["plan"]
    assert plan["mode"] == "serial" and plan["reason"] == "workers=0 was asked for"
    assert serial["counts"]["failed"] == 1 and serial["counts"]["total"] == 1  # the failed test ran first


async def test_tiny_suite_runs_serially(tmp_path: Path) -> None:
    write_suite(tmp_path, modules=2, functions=2, per_function=2)
    result = await run_tests(Workspace.open(tmp_path), PROFILES["quick"])
    plan = result["runners"]["python"]["plan"]
    assert plan["mode"] == "serial" and "too few" in plan["reason"]
    assert result["counts"]["failed"] == 0 and result["counts"]["total"] == 9


async def test_impacted_run_finds_exactly_the_new_failures_per_test(tmp_path: Path) -> None:
    write_suite(tmp_path, modules=40, failing_modules=2, work=40_000)  # each test computes a few ms
    commit_all(tmp_path, "generated project")
    project = Workspace.open(tmp_path)
    before = await run_tests(project, PROFILES["python"])  # full run with coverage: per-test contexts recorded
    assert (project.root / ".paradise" / "coverage" / "contexts.sqlite").is_file()
    module = project.root / "pkg" / "mod_17.py"
    module.write_text(module.read_text().replace("return x * 4 + 17", "return x * 4 + 18"), encoding="utf-8")

    impacted = await run_impacted_tests(project, PROFILES["python"])
    after = await run_tests(project, PROFILES["quick"])
    new_failures = failed_set(after) - failed_set(before)
    assert new_failures == {f"tests/test_mod_17.py::test_f2_{n}" for n in range(3)}
    assert impacted["mode"] == "impacted"
    assert failed_set(impacted["tests"]) == new_failures
    assert impacted["counts"]["total"] == 3 and impacted["counts"]["errors"] == 0
    selection = impacted["selection"]
    assert selection["granularity"] == "test" and selection["test_functions"] == 3
    assert selection["selected_share"] < 0.01 and selection["time_saved_s"] > 0
    assert impacted["tests"]["duration_s"] <= 0.6 * after["duration_s"], (
        impacted["tests"]["duration_s"],
        after["duration_s"],
    )


async def test_module_level_change_selects_files_the_full_run_collects(project: Workspace) -> None:
    module = project.root / "pkg" / "mod_1.py"
    module.write_text(module.read_text() + "\nLIMIT = 3\n", encoding="utf-8")
    result = await run_impacted_tests(project, PROFILES["quick"])
    assert result["mode"] == "impacted"
    assert [t["path"] for t in result["selected_tests"]] == ["tests/test_mod_1.py"]
    notes = result["selection"]["notes"]
    assert any("tests/fixtures/test_not_a_test.py: left out" in n for n in notes), notes
    # the top-level conftest.py fixture reaches the selected file: no collection error (module 1 has
    # 4 deliberately failing tests)
    assert result["counts"] == {"total": 12, "passed": 8, "failed": 4, "skipped": 0, "errors": 0}


async def test_changed_data_file_runs_the_tests_that_name_it(project: Workspace) -> None:
    (project.root / "tests" / "data" / "sample.txt").write_text("alpha\ngamma\n", encoding="utf-8")
    result = await run_impacted_tests(project, PROFILES["quick"])
    assert result["mode"] == "impacted"
    assert [t["path"] for t in result["selected_tests"]] == ["tests/test_data.py"]
    assert "reads tests/data/sample.txt" in result["selected_tests"][0]["reason"]
    assert failed_set(result["tests"]) == {"tests/test_data.py::test_sample_lines"}


async def test_unnamed_data_file_runs_the_full_suite_with_the_reason(project: Workspace) -> None:
    (project.root / "pkg" / "resources" / "blob.dat").write_text("changed\n", encoding="utf-8")
    result = await run_impacted_tests(project, PROFILES["quick"])
    assert result["mode"] == "full"
    assert "pkg/resources/blob.dat changed and no Python file names it" in result["reason"]
    assert result["counts"]["total"] == 481


async def test_workspace_venv_without_xdist_gets_the_quality_environments(tmp_path: Path) -> None:
    """A workspace venv with pytest but no pytest-xdist: the plan lends it the server's xdist."""
    import subprocess
    import sys

    import pytest as pytest_module

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True)
    site = Path(pytest_module.__file__).parent.parent
    deps = tmp_path / "deps"
    deps.mkdir()
    for name in ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py.py"):
        if (site / name).exists():
            (deps / name).symlink_to(site / name)
    for info in site.glob("*.dist-info"):
        if info.name.split("-", 1)[0].lower() in ("pytest", "pluggy", "iniconfig", "packaging", "pygments"):
            (deps / info.name).symlink_to(info)
    venv_site = next((tmp_path / ".venv" / "lib").glob("python3*/site-packages"))
    (venv_site / "deps.pth").write_text(str(deps) + "\n", encoding="utf-8")
    probe = subprocess.run(
        [str(tmp_path / ".venv" / "bin" / "python"), "-c", "import pytest, xdist"], capture_output=True, text=True
    )
    assert "No module named 'xdist'" in probe.stderr  # pytest is there, xdist is not
    write_suite(tmp_path, modules=4, functions=2, per_function=2)
    result = await run_tests(Workspace.open(tmp_path), PROFILES["quick"], workers=2)
    python = result["runners"]["python"]
    assert python["interpreter"]["source"] == "workspace venv"
    assert python["plan"]["xdist"] == "quality environment" and python["plan"]["mode"] == "parallel"
    assert result["counts"] == {"total": 17, "passed": 17, "failed": 0, "skipped": 0, "errors": 0}
    assert {w["worker"] for w in python["plan"]["workers_used"]} == {"gw0", "gw1"}
