"""Parsers of test results, on real outputs captured from pytest, coverage.py and jest."""

from __future__ import annotations

import json
from pathlib import Path

from instances.quality.testing.testparse import (
    parse_coverage_json,
    parse_jest_coverage,
    parse_junit,
    parse_verbose_output,
)

DATA = Path(__file__).parents[1] / "data"


def test_junit_counts_failures_errors_and_skips() -> None:
    parsed = parse_junit((DATA / "junit_xunit1.xml").read_text())
    assert parsed["counts"] == {"total": 5, "passed": 1, "failed": 2, "skipped": 1, "errors": 1}
    assert parsed["outcomes"] == {
        "tests/test_calc.py::test_add": "passed",
        "tests/test_calc.py::test_add_bad": "failed",
        "tests/test_calc.py::test_div_zero": "failed",
        "tests/test_calc.py::test_skip": "skipped",
        "tests/test_calc.py::test_err": "error",
    }


def test_junit_failure_locations_point_into_the_test_and_at_the_crash() -> None:
    failures = {f["test"]: f for f in parse_junit((DATA / "junit_xunit1.xml").read_text())["failures"]}
    bad = failures["tests/test_calc.py::test_add_bad"]
    assert (bad["file"], bad["line"], bad["message"]) == ("tests/test_calc.py", 9, "assert 4 == 5")
    div = failures["tests/test_calc.py::test_div_zero"]
    # the test line that called into the code, and the line in the code that raised
    assert (div["file"], div["line"]) == ("tests/test_calc.py", 12)
    assert (div["crash_file"], div["crash_line"]) == ("pkg/calc.py", 6)
    assert div["message"] == "ZeroDivisionError: b is zero"
    err = failures["tests/test_calc.py::test_err"]
    assert err["kind"] == "error"
    assert err["message"] == 'failed on setup with "RuntimeError: fixture broke"'


def test_junit_collection_error_names_the_module_and_the_cause() -> None:
    xml = (
        '<testsuites><testsuite><testcase classname="" name="tests.test_x">'
        '<error message="collection failure">tests/test_x.py:1: in &lt;module&gt;\n    import nope\n'
        "E   ModuleNotFoundError: No module named 'nope'</error></testcase></testsuite></testsuites>"
    )
    [failure] = parse_junit(xml)["failures"]
    assert failure["file"] == "tests/test_x.py"
    assert failure["line"] == 1
    assert failure["message"] == "collection failure: ModuleNotFoundError: No module named 'nope'"


def test_verbose_output_gives_partial_counts_and_the_running_test() -> None:
    stdout = (
        "============================= test session starts ==============================\n"
        "collecting ... collected 3 items\n\n"
        "tests/test_slow.py::test_fast PASSED                                      [ 33%]\n"
        "tests/test_slow.py::TestX::test_skip SKIPPED (nope)                       [ 50%]\n"
        "tests/test_slow.py::test_hangs "
    )
    parsed = parse_verbose_output(stdout)
    assert parsed["counts"] == {"total": 2, "passed": 1, "failed": 0, "skipped": 1, "errors": 0}
    assert parsed["running_test"] == "tests/test_slow.py::test_hangs"
    assert parse_verbose_output("tests/a.py::t FAILED\n")["running_test"] is None


def test_coverage_json_per_file_and_total() -> None:
    cov = parse_coverage_json(json.loads((DATA / "coverage.json").read_text()))
    assert cov["total"] == {
        "lines_total": 6,
        "lines_covered": 5,
        "line_percent": 83.33,
        "branches_total": 2,
        "branches_covered": 1,
        "branch_percent": 50.0,
        "branch_measured": True,
    }
    calc = cov["files"]["pkg/calc.py"]
    assert (calc["lines_covered"], calc["lines_total"], calc["missing_lines"]) == (5, 6, [7])
    assert calc["_executed_lines"] == [1, 2, 4, 5, 6]
    assert cov["files"]["pkg/__init__.py"]["line_percent"] == 100.0


def test_jest_coverage_summary() -> None:
    cov = parse_jest_coverage(json.loads((DATA / "jest_coverage_summary.json").read_text()))
    assert cov["total"]["line_percent"] == 50.0
    assert cov["total"]["branches_total"] == 2 and cov["total"]["branch_percent"] == 0.0
    assert list(cov["files"]) == ["/ws/src/sum.js"]
