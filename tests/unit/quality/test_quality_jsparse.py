"""Pure parts of the JS tools: jest/vitest report parsing, Playwright/Newman/Lighthouse reports,
coverage merged across languages, which packages a path runs, the app URL rule, prettier's first
differing line, and the lint score weighted by each language's size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instances.quality.errors import QualityError
from instances.quality.js.api_tests import parse_newman_report
from instances.quality.js.appserver import loopback_url, split_command
from instances.quality.js.e2e import parse_playwright_report
from instances.quality.js.jsimpact import js_plan
from instances.quality.js.jslint import first_difference
from instances.quality.js.jsrunners import default_test_pattern, failure_location, parse_js_report
from instances.quality.js.jstests import merge_coverage, plan_for_path
from instances.quality.js.packages import JsPackage
from instances.quality.js.performance import parse_lighthouse_report
from instances.quality.scoring import quality_score
from instances.quality.testparse import parse_jest_coverage
from instances.quality.workspace import Workspace

DATA = Path(__file__).parent / "data"


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


def test_playwright_report(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path)
    report = {
        "config": {"rootDir": str(tmp_path / "e2e")},
        "suites": [
            {
                "title": "shop.spec.ts",
                "file": "shop.spec.ts",
                "specs": [
                    {
                        "title": "adds",
                        "file": "shop.spec.ts",
                        "line": 3,
                        "tests": [{"status": "expected", "projectName": "chromium", "results": [{"duration": 5}]}],
                    }
                ],
                "suites": [
                    {
                        "title": "cart",
                        "file": "shop.spec.ts",
                        "specs": [
                            {
                                "title": "pays",
                                "file": "shop.spec.ts",
                                "line": 9,
                                "tests": [
                                    {
                                        "status": "unexpected",
                                        "results": [
                                            {
                                                "error": {
                                                    "message": "\x1b[31mError\x1b[39m: boom",
                                                    "location": {"line": 11},
                                                },
                                                "attachments": [
                                                    {"name": "trace", "path": str(tmp_path / "t/trace.zip")}
                                                ],
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    parsed = parse_playwright_report(report, ws, tmp_path)
    assert parsed["counts"] == {"total": 2, "passed": 1, "failed": 1, "skipped": 0, "errors": 0}
    assert [t["test"] for t in parsed["tests"]] == ["e2e/shop.spec.ts::adds", "e2e/shop.spec.ts::cart > pays"]
    [failure] = parsed["failures"]
    assert (failure["line"], failure["message"]) == (11, "Error: boom")
    assert failure["artifacts"] == [{"name": "trace", "path": "t/trace.zip", "content_type": None}]


def test_newman_report() -> None:
    report = {
        "run": {
            "executions": [
                {
                    "item": {"name": "list"},
                    "request": {
                        "method": "GET",
                        "url": {"protocol": "http", "host": ["127", "0", "0", "1"], "port": "80", "path": ["api"]},
                    },
                    "response": {"code": 200, "responseTime": 4},
                    "assertions": [{"assertion": "ok"}, {"assertion": "bad", "error": {"message": "expected 1"}}],
                },
                {
                    "item": {"name": "down"},
                    "request": {"method": "GET", "url": "http://127.0.0.1:9/"},
                    "requestError": {"message": "ECONNREFUSED"},
                },
            ]
        }
    }
    parsed = parse_newman_report(report, "c.postman_collection.json")
    assert parsed["counts"] == {"total": 3, "passed": 1, "failed": 1, "skipped": 0, "errors": 1}
    assert parsed["requests"][0]["url"] == "http://127.0.0.1:80/api"
    assert [f["test"] for f in parsed["failures"]] == [
        "c.postman_collection.json::list::bad",
        "c.postman_collection.json::down",
    ]


def test_lighthouse_report() -> None:
    report = {
        "categories": {"performance": {"score": 0.934}, "seo": {"score": None}},
        "audits": {
            "first-contentful-paint": {"numericValue": 812.345},
            "cumulative-layout-shift": {"numericValue": 0.01234},
            "total-blocking-time": {"numericValue": 0},
            "meta-description": {"title": "Has a meta description", "score": 0, "scoreDisplayMode": "binary"},
            "diagnostics": {"score": 0, "scoreDisplayMode": "informative"},
        },
        "finalDisplayedUrl": "http://127.0.0.1:8000/",
    }
    parsed = parse_lighthouse_report(report)
    assert parsed["scores"] == {"performance": 93, "seo": None}
    assert parsed["metrics"]["fcp_ms"] == 812.3 and parsed["metrics"]["cls"] == 0.0123
    assert parsed["metrics"]["lcp_ms"] is None and parsed["metrics"]["tbt_ms"] == 0
    assert [a["audit"] for a in parsed["failing_audits"]] == ["meta-description"]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:3000/", "http://localhost/", "https://[::1]:8443/x", "http://127.1.2.3/"]
)
def test_loopback_urls_are_accepted(url: str) -> None:
    assert loopback_url(url, "url") == url


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "https://example.com/", "file:///etc/passwd", "127.0.0.1:80"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(QualityError) as info:
        loopback_url(url, "url")
    assert info.value.code == "bad_argument"


def test_start_command_is_split_without_a_shell() -> None:
    assert split_command("node server.js --port 3000 'a b'") == ["node", "server.js", "--port", "3000", "a b"]
    assert split_command("node a.js; rm -rf /") == ["node", "a.js;", "rm", "-rf", "/"]  # no shell meaning
    for bad in ("", "'open"):
        with pytest.raises(QualityError):
            split_command(bad)


def test_first_line_prettier_would_change() -> None:
    assert first_difference("a\nb\nc\n", "a\nB\nc\n") == 2
    assert first_difference("a\n", "a\nb\n") == 2
    assert first_difference("same\n", "same\n") == 1


def test_lint_component_weighs_each_language_by_its_lines() -> None:
    base = {"python_lines": 1000, "javascript_lines": 3000}
    clean_js = quality_score({**base, "lint": {"total": 20, "by_rule": {}, "by_language": {"python": 20}}})
    # python: 20 findings per 1000 lines -> 0; javascript clean -> 1; shares 1/4 and 3/4
    assert clean_js["components"]["lint"]["earned"] == 11.25
    clean_py = quality_score({**base, "lint": {"total": 60, "by_rule": {}, "by_language": {"javascript": 60}}})
    assert clean_py["components"]["lint"]["earned"] == 3.75
    perf = quality_score({"performance": {"scores": {"performance": 80}}})
    assert perf["components"]["performance"] == {"earned": 8.0, "weight": 10.0} and perf["value"] == 80
