"""Quality score, thresholds, recommendations and trends."""

from __future__ import annotations

from instances.quality.reports.scoring import (
    check_thresholds,
    collect_metrics,
    quality_score,
    report_recommendations,
    untested_changed_functions,
)
from instances.quality.reports.trends import compare_runs, trend_recommendations


def _sections() -> dict:
    return {
        "tests": {
            "status": "ok",
            "counts": {"total": 10, "passed": 8, "failed": 1, "skipped": 0, "errors": 1},
            "failures": [
                {"test": "tests/test_a.py::test_x", "file": "tests/test_a.py", "line": 7, "message": "assert 1 == 2"}
            ],
            "coverage": {
                "total": {"line_percent": 80.0, "branch_percent": 50.0, "branch_measured": True},
                "files": {"app/m.py": {"_executed_lines": [1, 2, 5]}},
            },
        },
        "lint": {"status": "ok", "counts": {"total": 4, "by_rule": {"F401": 3, "E501": 1}, "by_severity": {}}},
        "security": {
            "status": "ok",
            "counts": {"total": 2},
            "findings": [
                {
                    "rule": "B602",
                    "name": "subprocess_popen_with_shell_equals_true",
                    "file": "app/m.py",
                    "line": 3,
                    "severity": "high",
                    "message": "shell=True",
                },
                {"rule": "B404", "file": "app/m.py", "line": 1, "severity": "low", "message": "subprocess"},
            ],
        },
    }


def test_metrics_and_score_follow_the_documented_formula() -> None:
    metrics = collect_metrics(_sections(), python_lines=400)
    assert metrics["tests"]["pass_rate"] == 80.0
    assert metrics["coverage"] == {"line_percent": 80.0, "branch_percent": 50.0}
    assert metrics["security"]["by_severity"] == {"high": 1, "medium": 0, "low": 1}
    assert metrics["security"]["keys"] == ["B404|app/m.py|subprocess", "B602|app/m.py|shell=True"]
    score = quality_score(metrics)
    # tests 40*0.8=32; coverage 25*0.8=20; lint: 4 findings / 0.4 kloc = 10 per kloc -> 15*(1-10/20)=7.5;
    # security: penalty 10+1=11 -> 20*(1-11/20)=9.  Total 68.5 of 100.
    assert score["components"] == {
        "tests": {"earned": 32.0, "weight": 40.0},
        "coverage": {"earned": 20.0, "weight": 25.0},
        "lint": {"earned": 7.5, "weight": 15.0},
        "security": {"earned": 9.0, "weight": 20.0},
    }
    assert score["value"] == 69  # 68.5 rounds half up
    assert score["excluded"] == ["performance"]


def test_score_renormalises_over_measured_components() -> None:
    score = quality_score(
        {"python_lines": 100, "tests": {"passed": 3, "pass_rate": 100.0}, "lint": {"total": 0, "by_rule": {}}}
    )
    assert score["value"] == 100
    assert score["excluded"] == ["coverage", "performance", "security"]
    assert quality_score({"python_lines": 10})["value"] is None
    no_tests = quality_score({"tests": {"total": 0, "pass_rate": None}})
    assert no_tests["value"] == 0


def test_thresholds_report_actual_values_and_unmeasured() -> None:
    metrics = collect_metrics(_sections(), python_lines=400)
    checks = check_thresholds(
        {"min_coverage": 85, "max_lint_findings": 4, "max_high_severity": 0, "min_score": 60}, metrics, 68
    )
    assert [(c["name"], c["actual"], c["passed"]) for c in checks] == [
        ("min_coverage", 80.0, False),
        ("max_lint_findings", 4, True),
        ("max_high_severity", 1, False),
        ("min_score", 68, True),
    ]
    assert check_thresholds({"min_coverage": 50}, {}, None)[0]["passed"] is None


def test_untested_changed_functions_use_body_lines_only() -> None:
    changes = {
        "changed_functions": [
            {
                "path": "app/m.py",
                "name": "used",
                "kind": "function",
                "change": "modified",
                "start_line": 1,
                "end_line": 2,
                "body_start_line": 2,
            },
            {
                "path": "app/m.py",
                "name": "unused",
                "kind": "function",
                "change": "added",
                "start_line": 4,
                "end_line": 6,
                "body_start_line": 6,
            },
            {
                "path": "app/m.py",
                "name": "gone",
                "kind": "function",
                "change": "removed",
                "start_line": None,
                "end_line": None,
                "body_start_line": None,
            },
            {
                "path": "app/other.py",
                "name": "elsewhere",
                "kind": "function",
                "change": "added",
                "start_line": 1,
                "end_line": 2,
                "body_start_line": 2,
            },
        ]
    }
    coverage = _sections()["tests"]["coverage"]
    # line 5 (a def line executed at import) does not count: the body starts at 6
    assert untested_changed_functions(changes, coverage) == [
        {"path": "app/m.py", "name": "unused", "start_line": 4, "end_line": 6}
    ]


def test_recommendations_cite_the_findings() -> None:
    sections = _sections()
    metrics = collect_metrics(sections, python_lines=400)
    checks = check_thresholds({"min_coverage": 85}, metrics, 68)
    recs = report_recommendations(
        sections, metrics, checks, [{"path": "app/m.py", "name": "unused", "start_line": 4, "end_line": 6}]
    )
    assert recs == [
        "Fix 2 failing test(s); first: tests/test_a.py::test_x at tests/test_a.py:7 - assert 1 == 2",
        "Changed function unused in app/m.py (lines 4-6) is not executed by any test",
        "Fix high-severity B602 (subprocess_popen_with_shell_equals_true) at app/m.py:3: shell=True",
        "Resolve 4 lint finding(s); most frequent: F401 (3), E501 (1)",
        "Threshold min_coverage not met: 80.0 vs limit 85",
    ]


def _entry(score, lint_rules, keys, coverage, failed=0) -> dict:
    return {
        "generated_at": f"t{score}",
        "profile": "python",
        "score": score,
        "report": f"r{score}.json",
        "metrics": {
            "tests": {"passed": 5, "failed": failed, "errors": 0},
            "coverage": {"line_percent": coverage, "branch_percent": None},
            "lint": {"total": sum(lint_rules.values()), "by_rule": lint_rules},
            "security": {"total": len(keys), "keys": keys, "by_severity": {"high": 0}},
        },
    }


def test_trends_over_runs_and_recommendations_from_what_got_worse() -> None:
    runs = [
        _entry(90, {"F401": 1}, ["B404|a.py|x"], 85.0),
        _entry(92, {"F401": 1}, ["B404|a.py|x"], 86.0),
        _entry(80, {"F401": 2, "E711": 3}, ["B404|a.py|x", "B602|b.py|shell"], 70.5, failed=1),
    ]
    result = compare_runs(runs)
    assert result["count"] == 3
    assert result["trends"]["score"] == "worsening"
    assert result["trends"]["line_coverage"] == "worsening"
    assert result["trends"]["tests_passed"] == "unchanged"
    assert result["trends"]["branch_coverage"] == "not measured"
    assert result["changes_since_previous"]["lint_findings"] == {"previous": 1, "last": 5, "delta": 4}
    assert result["recommendations"] == [
        "Lint findings rose from 1 to 5 (E711 +3, F401 +1)",
        "1 new security finding(s) since the previous run: B602 b.py",
        "Line coverage dropped from 86.0% to 70.5%",
        "Failing tests rose from 0 to 1",
        "Quality score fell from 92 to 80",
    ]
    assert trend_recommendations(runs[0], runs[1]) == []
    single = compare_runs(runs[:1])
    assert single["note"] == "at least two quality_report runs are needed to show a trend"
