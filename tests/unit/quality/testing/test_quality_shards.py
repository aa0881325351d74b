"""A run split by file: how files are shared out, how the processes' exit codes, outputs and junit
reports become one result, and how free CPUs are measured."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from instances.quality.core import cpus
from instances.quality.core.runner import RunResult
from instances.quality.testing.paradise_order import assign_files
from instances.quality.testing.shards import merge_exit_codes, merge_junit, merge_runs
from instances.quality.testing.testparse import parse_junit

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="{n}">{cases}</testsuite>
</testsuites>"""
COLLECTION_ERROR = (
    '<testcase classname="" name="tests.test_broken" time="0.0"><error message="collection failure">'
    "ImportError: no module named nope</error></testcase>"
)


def case(file: str, name: str, failed: bool = False) -> str:
    inner = f'<failure message="assert 1 == 2">{file}:3: AssertionError</failure>' if failed else ""
    classname = file.removesuffix(".py").replace("/", ".")
    return f'<testcase classname="{classname}" name="{name}" file="{file}" line="2" time="0.01">{inner}</testcase>'


def test_files_go_costliest_first_to_the_least_loaded_process() -> None:
    costs = {"a.py": 5.0, "b.py": 4.0, "c.py": 3.0, "d.py": 2.0}
    owner = assign_files(costs, 2)
    loads = [sum(c for f, c in costs.items() if owner[f] == i) for i in range(2)]
    assert owner["a.py"] == 0 and owner["b.py"] == 1 and loads == [7.0, 7.0]
    # the answer depends only on the costs, never on the order the files were collected in
    assert assign_files(dict(reversed(list(costs.items()))), 2) == owner
    assert set(assign_files({"only.py": 1.0}, 3).values()) == {0}  # more processes than files: some idle


def test_exit_codes_most_serious_first() -> None:
    assert merge_exit_codes([0, 1]) == 1
    assert merge_exit_codes([1, 2]) == 2  # a collection error outranks failed tests
    assert merge_exit_codes([0, 5]) == 0  # one process had no files of the selection: not "no tests"
    assert merge_exit_codes([5, 5]) == 5
    assert merge_exit_codes([0, None]) is None  # one process was killed or never started
    assert merge_exit_codes([4, 3]) == 3


def test_runs_merge_into_one_with_every_output() -> None:
    runs = [
        RunResult(["python", "-m", "pytest"], 0, "a.py::t PASSED", duration_s=2.0),
        RunResult(["python", "-m", "pytest"], 1, "b.py::u FAILED", duration_s=3.5, truncated=True),
    ]
    run = merge_runs(runs)
    assert (run.returncode, run.duration_s, run.truncated, run.timed_out) == (1, 3.5, True, False)
    assert "a.py::t PASSED" in run.stdout and "b.py::u FAILED" in run.stdout
    assert merge_runs(runs[:1]) is runs[0]


def test_junit_reports_merge_and_a_shared_collection_error_counts_once(tmp_path: Path) -> None:
    first = tmp_path / "0.xml"
    second = tmp_path / "1.xml"
    first.write_text(
        JUNIT.format(
            n=3,
            cases=case("tests/test_a.py", "test_one")
            + COLLECTION_ERROR
            + case("tests/test_a.py", "test_two", failed=True),
        ),
        encoding="utf-8",
    )
    second.write_text(
        JUNIT.format(n=2, cases=case("tests/test_b.py", "test_three") + COLLECTION_ERROR), encoding="utf-8"
    )
    out = tmp_path / "junit.xml"
    assert merge_junit([first, second, tmp_path / "missing.xml"], out)
    parsed = parse_junit(out.read_text(encoding="utf-8"))
    assert parsed["counts"] == {"total": 4, "passed": 2, "failed": 1, "skipped": 0, "errors": 1}
    assert [f["test"] for f in parsed["failures"] if f.get("file") == "tests/test_a.py"] == [
        "tests/test_a.py::test_two"
    ]
    assert out.read_text(encoding="utf-8").count("<testsuite ") == 2  # each process keeps its suite
    assert not merge_junit([tmp_path / "missing.xml"], tmp_path / "none.xml")  # nothing readable: no report


def test_idle_cpus_from_proc_stat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = tmp_path / "stat"
    samples = iter(["cpu  100 0 50 800 50 0 0 0 0 0\n", "cpu  150 0 50 1700 100 0 0 0 0 0\n"])

    async def fake_sleep(_seconds: float) -> None:
        stat.write_text(next(samples), encoding="ascii")

    stat.write_text(next(samples), encoding="ascii")
    monkeypatch.setattr(cpus, "_PROC_STAT", stat)
    monkeypatch.setattr(cpus.asyncio, "sleep", fake_sleep)
    monkeypatch.setattr(cpus.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cpus, "available_cpus", lambda: 2)
    # 1000 jiffies passed, 950 of them idle or waiting for I/O: 1.9 of 2 CPUs were free
    assert asyncio.run(cpus.idle_cpus()) == 1.9
    monkeypatch.setattr(cpus, "_PROC_STAT", tmp_path / "absent")
    assert asyncio.run(cpus.idle_cpus()) is None


def test_a_container_cpu_limit_lowers_the_cpu_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = tmp_path / "cpu.max"
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    monkeypatch.setattr(cpus, "_CPU_MAX", limit)
    limit.write_text("150000 100000\n", encoding="ascii")  # docker run --cpus 1.5
    assert cpus.available_cpus() == 2
    limit.write_text("max 100000\n", encoding="ascii")
    assert cpus.available_cpus() == 4
    limit.write_text("50000 100000\n", encoding="ascii")
    assert cpus.available_cpus() == 1
