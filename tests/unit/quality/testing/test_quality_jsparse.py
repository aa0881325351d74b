"""Pure parts of the JS test runners: jest/vitest report parsing, coverage merged across languages, which
packages a path runs and how impacted tests group by package and runner."""

from __future__ import annotations

import json
from pathlib import Path

from instances.quality.core.js_packages import JsPackage
from instances.quality.impact.js_impact import js_plan
from instances.quality.testing.js_runners import default_test_pattern, failure_location, parse_js_report
from instances.quality.testing.js_tests import merge_coverage, plan_for_path
from instances.quality.testing.testparse import parse_jest_coverage

DATA = Path(__file__).parents[1] / "data"



def test_jest_report_counts_and_failure_location() -> None:
    parsed = parse_js_report(json.loads((DATA / "jest_results.json").read_text()))
    assert parsed["counts"] == {"total": 3, "passed": 1, "failed": 1, "skipped": 1, "errors": 0}
    [failure] = parsed["failures"]
    assert failure["test"] == "/ws/src/sum.test.js::sum breaks"
    assert (failure["file"], failure["line"]) == ("/ws/src/sum.test.js", 7)
    assert failure["message"].startswith("Error: expect(received).toBe(expected)")


def test_vitest_frames_without_parentheses_and_suites_that_fail_to_load() -> None:
    data = {
        "testResults": [
            {
                "name": "/ws/a.test.ts",
                "status": "failed",
                "assertionResults": [
                    {
                        "fullName": "math adds",
                        "status": "failed",
                        "location": {"line": 3, "column": 1},
                        "failureMessages": [
                            "AssertionError: expected 3 to be 4\n    at /ws/a.test.ts:5:21\n"
                            "    at file:///opt/quality-node/node_modules/vitest/dist/run.js:1:1"
                        ],
                    },
                    {"fullName": "todo", "status": "todo", "failureMessages": []},
                ],
            },
            {"name": "/ws/b.test.ts", "status": "failed", "assertionResults": [], "message": "SyntaxError: x"},
        ]
    }
    parsed = parse_js_report(data)
    assert parsed["counts"] == {"total": 3, "passed": 0, "failed": 1, "skipped": 1, "errors": 1}
    first, second = parsed["failures"]
    assert (first["line"], first["message"]) == (5, "AssertionError: expected 3 to be 4")
    assert "node_modules" not in first["traceback"]
    assert (second["kind"], second["message"]) == ("error", "SyntaxError: x")
    assert failure_location(["at Object.<anonymous> (/ws/c.test.js:9:3)"], "/ws/c.test.js") == ("/ws/c.test.js", 9)


def test_default_test_patterns_of_each_runner() -> None:
    jest, vitest = default_test_pattern("jest"), default_test_pattern("vitest")
    assert jest.search("__tests__/cart.js") and jest.search("src/a.spec.tsx") and jest.search("test.js")
    assert not jest.search("src/contest.js")
    assert vitest.search("src/a.test.mts") and not vitest.search("__tests__/cart.js")


def test_coverage_is_merged_by_lines_and_kept_per_language() -> None:
    python = {"runner": "pytest", "coverage": {"files": {"a.py": {}}, "total": _total(80, 100, 5, 10, True)}}
    js_cov = parse_jest_coverage(
        {"total": {"lines": {"total": 20, "covered": 5}, "branches": {"total": 4, "covered": 2}}, "/w/x.js": {}}
    )
    jest = {"runner": "jest", "coverage": js_cov}
    merged = merge_coverage({"python": python, "jest": jest})
    assert merged["source"] == "pytest+jest"
    assert (merged["total"]["lines_total"], merged["total"]["lines_covered"]) == (120, 85)
    assert merged["total"]["line_percent"] == 70.83  # 85/120: each side counts by its own lines
    assert merged["by_language"]["javascript"]["line_percent"] == 25.0
    assert merge_coverage({"python": {"runner": "pytest"}}) is None


def _total(covered: int, total: int, bcov: int, btotal: int, measured: bool) -> dict:
    return {
        "lines_total": total,
        "lines_covered": covered,
        "branches_total": btotal,
        "branches_covered": bcov,
        "branch_measured": measured,
    }


def test_which_packages_a_path_runs() -> None:
    root = JsPackage("", Path("/ws"), {}, ["jest"])
    web = JsPackage("packages/web", Path("/ws/packages/web"), {}, ["vitest"])
    api = JsPackage("packages/api", Path("/ws/packages/api"), {}, ["jest"])
    docs = JsPackage("docs", Path("/ws/docs"), {}, [])
    packages = [root, web, api, docs]
    assert [(p.label, f) for p, f in plan_for_path(packages, None)] == [
        (".", None),
        ("packages/web", None),
        ("packages/api", None),
    ]
    assert [(p.label, f) for p, f in plan_for_path(packages, "packages/web/src/a.test.js")] == [
        ("packages/web", "src/a.test.js")
    ]
    assert [(p.label, f) for p, f in plan_for_path(packages, "packages")] == [
        (".", "packages"),
        ("packages/web", None),
        ("packages/api", None),
    ]
    assert plan_for_path(packages, "tests/test_x.py") == []


def test_plan_groups_impacted_tests_by_package_and_runner() -> None:
    js = {
        "full_suite": [{"key": "jest:packages/api", "package": "packages/api", "runner": "jest", "reasons": ["r1"]}],
        "impacted_tests": [
            {"path": "packages/web/a.test.js", "package": "packages/web", "runner": "vitest"},
            {"path": "packages/web/b.test.js", "package": "packages/web", "runner": "vitest"},
        ],
    }
    plan = js_plan(js)
    assert [(e["key"], e["mode"], e["tests"]) for e in plan] == [
        ("jest:packages/api", "full", []),
        ("vitest:packages/web", "impacted", ["packages/web/a.test.js", "packages/web/b.test.js"]),
    ]
