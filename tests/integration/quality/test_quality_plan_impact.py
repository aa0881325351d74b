"""The execution plan and impact selection on generated projects, with real pytest runs: parallel by
default on a suite of several hundred tests, serial for a tiny one, failed tests first, early stop;
a regression in one module found exactly by the impacted run (per test function, from recorded
coverage) in a fraction of the full run's time; data files mapped or falling back to the full suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from generated_suite import commit_all, write_suite

from instances.quality.core.profiles import load_profiles
from instances.quality.core.workspace import Workspace
from instances.quality.impact.impact import run_impacted_tests
from instances.quality.testing.contexts import ContextMap
from instances.quality.testing.tests_tool import run_tests
from tests.helpers import lean_venv

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
    # 481 tests and 2 CPUs: split by file over 2 processes, unless other work already keeps the CPUs busy
    if plan["mode"] == "serial":
        assert "busy" in plan["reason"] and plan["estimate"]["idle_cpus"] < 1.5, plan
    else:
        assert (plan["workers"], plan["split"], len(plan["workers_used"])) == (2, "files", 2), plan
        assert sum(w["files"] for w in plan["workers_used"]) == 41 and plan["xdist"] is None
    assert sum(w["tests"] for w in plan["workers_used"]) == first["counts"]["total"] == 481
    failing = failed_set(first)
    assert len(failing) == 8

    second = await run_tests(project, PROFILES["quick"], workers="auto")  # parallel whatever the load
    plan = second["runners"]["python"]["plan"]
    assert (plan["mode"], plan["workers"], len(plan["workers_used"])) == ("parallel", 2, 2), plan
    assert plan["order"]["failed_first"] == sorted(failing)
    assert plan["order"]["timed_tests"] == 481
    # each process runs its share failed-first: one that holds a failing module starts with a failed test
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
    # How much faster than the full run is measured by scripts/bench/impacted_tests.py, not timed here.


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

    lean_venv(tmp_path)
    probe = subprocess.run(
        [str(tmp_path / ".venv" / "bin" / "python"), "-c", "import pytest, xdist"], capture_output=True, text=True
    )
    assert "No module named 'xdist'" in probe.stderr  # pytest is there, xdist is not
    write_suite(tmp_path, modules=4, functions=2, per_function=2)
    # one file for two workers cannot be split by file: shared out by test with xdist
    result = await run_tests(Workspace.open(tmp_path), PROFILES["quick"], path="tests/test_mod_0.py", workers=2)
    python = result["runners"]["python"]
    assert python["interpreter"]["source"] == "workspace venv"
    assert python["plan"]["xdist"] == "quality environment" and python["plan"]["split"] == "tests"
    assert result["counts"] == {"total": 4, "passed": 4, "failed": 0, "skipped": 0, "errors": 0}
    assert {w["worker"] for w in python["plan"]["workers_used"]} == {"gw0", "gw1"}


async def test_a_run_split_by_file_reports_what_the_serial_run_reports(project: Workspace) -> None:
    """Two processes, one result: the same counts, failures, coverage and per-test coverage map as
    the serial run.  A collection error is reported once, whether both processes saw it (a file
    never timed, collected by both) or only the one that holds the file."""
    broken = project.root / "tests" / "test_broken.py"
    broken.write_text("import not_a_module\n", encoding="utf-8")
    split = await run_tests(project, PROFILES["quick"], workers=2, coverage=False)  # never timed: both see it
    assert split["runners"]["python"]["plan"]["split"] == "files"
    # pytest stops a session at a collection error before running anything
    assert split["counts"] == {"total": 1, "passed": 0, "failed": 0, "skipped": 0, "errors": 1}
    broken_id = "tests/test_broken.py::tests.test_broken"  # how junit names a module that failed to import
    assert [f["test"] for f in split["failures"]] == [broken_id]
    await run_tests(project, PROFILES["quick"], workers=0, coverage=False)  # now the broken file is timed too
    split = await run_tests(project, PROFILES["quick"], workers=2, coverage=False)
    # only the process holding the broken file stops; the other runs its share
    assert split["counts"]["errors"] == 1 and 0 < split["counts"]["total"] < 482
    assert [f["test"] for f in split["failures"]].count(broken_id) == 1
    broken.unlink()

    serial = await run_tests(project, PROFILES["quick"], workers=0, coverage=True)
    serial_map = ContextMap.load(project)
    split = await run_tests(project, PROFILES["quick"], workers=2, coverage=True)
    split_map = ContextMap.load(project)
    plan = split["runners"]["python"]["plan"]
    assert (plan["mode"], plan["split"], len(plan["workers_used"])) == ("parallel", "files", 2), plan
    assert split["counts"] == serial["counts"] == {"total": 481, "passed": 473, "failed": 8, "skipped": 0, "errors": 0}
    assert failed_set(split) == failed_set(serial) and len(failed_set(split)) == 8
    assert split["coverage"]["total"] == serial["coverage"]["total"]
    assert split["coverage"]["total"]["lines_covered"] > 1000
    assert serial_map is not None and split_map is not None
    assert split_map.all_tests() == serial_map.all_tests() and len(split_map.all_tests()) >= 470


async def test_a_split_run_that_times_out_counts_what_every_process_did(tmp_path: Path) -> None:
    """One process hangs: both are stopped at the time limit, the reply is partial, names the hanging
    test, and counts the tests the other process finished."""
    lean_venv(tmp_path)
    write_suite(tmp_path, modules=6, functions=2, per_function=2)  # 25 quick tests in 7 files
    (tmp_path / "tests" / "test_hang.py").write_text(
        "import time\n\n\ndef test_hangs():\n    time.sleep(120)\n", encoding="utf-8"
    )
    result = await run_tests(Workspace.open(tmp_path), PROFILES["quick"], workers=2, coverage=False, timeout=6)
    python = result["runners"]["python"]
    assert python["plan"]["split"] == "files" and python["timed_out"]
    assert result["status"] == "partial" and python["error"]["code"] == "timeout"
    assert "still running: tests/test_hang.py::test_hangs" in python["error"]["message"]
    assert result["counts"]["passed"] >= 12 and result["counts"]["failed"] == 0


async def test_timed_files_are_not_even_collected_by_the_other_process(tmp_path: Path) -> None:
    """With recorded times the split happens before collection: each test module is imported by one
    process only.  Never-timed files are collected by both and shared after collection."""
    lean_venv(tmp_path)
    (tmp_path / "tests").mkdir()
    log = tmp_path / "imports.log"
    for m in range(6):
        (tmp_path / "tests" / f"test_m{m}.py").write_text(
            "import os\nfrom pathlib import Path\n\n"
            f"with open(Path(__file__).parent.parent / 'imports.log', 'a') as out:\n"
            f"    out.write('m{m} ' + os.environ['PARADISE_SHARD'] + '\\n')\n\n"
            + "".join(f"\n\ndef test_{n}():\n    assert {n} >= 0\n" for n in range(3)),
            encoding="utf-8",
        )
    ws = Workspace.open(tmp_path)
    first = await run_tests(ws, PROFILES["quick"], workers=2, coverage=False)
    assert first["runners"]["python"]["plan"]["split"] == "files" and first["counts"]["passed"] == 18
    imported = log.read_text(encoding="utf-8").split()
    assert sorted(imported[0::2]) == sorted([f"m{m}" for m in range(6)] * 2)  # no times yet: both collect all
    log.unlink()

    second = await run_tests(ws, PROFILES["quick"], workers=2, coverage=False)
    assert second["counts"]["passed"] == 18
    lines = [line.split() for line in log.read_text(encoding="utf-8").splitlines()]
    assert sorted(module for module, _ in lines) == [f"m{m}" for m in range(6)]  # each module imported once
    assert {shard for _, shard in lines} == {"0/2", "1/2"}  # and both processes had a share
    used = second["runners"]["python"]["plan"]["workers_used"]
    assert sorted(w["files"] for w in used) == [3, 3] and sum(w["tests"] for w in used) == 18
