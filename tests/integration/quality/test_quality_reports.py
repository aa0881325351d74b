"""quality_report and quality_trends: report files on disk agree with the structured result."""

from __future__ import annotations

import json

from quality_workspaces import REPORT_REGRESSION, write


async def test_report_files_history_and_trends(call_tool, quality_servers) -> None:
    root = quality_servers["report"].workspace
    first, progress = await call_tool("report", "quality_report", {"profile": "python"})
    data = first.structured_content
    assert first.is_error is False
    assert data["metrics"]["tests"]["passed"] == 1
    assert data["metrics"]["coverage"]["line_percent"] == 75.0
    assert data["metrics"]["lint"]["total"] == 0
    assert data["metrics"]["security"]["total"] == 0
    # 40 (all pass) + 25 * 0.75 + 15 (no lint) + 20 (no findings) = 93.75 of 100
    assert data["score"]["value"] == 94
    assert data["passed"] is True
    assert data["untested_changed_functions"] == [
        {"path": "lib/mathx.py", "name": "triple", "start_line": 5, "end_line": 6}
    ]
    assert "Changed function triple in lib/mathx.py (lines 5-6) is not executed by any test" in data["recommendations"]
    assert [p[2] for p in progress if "elapsed" not in p[2]][:4] == [  # heartbeats depend on the machine
        "running tests",
        "linting",
        "scanning for security issues",
        "analysing changes",
    ]
    for kind in ("json", "md", "html"):
        assert (root / data["files"][kind]).is_file()
    on_disk = json.loads((root / data["files"]["json"]).read_text())
    assert on_disk == {
        k: v for k, v in data.items() if k not in ("tool", "status", "more", "reply", "run_id", "run_kept", "files_dir")
    }
    assert on_disk["score"] == data["score"]
    assert on_disk["metrics"] == data["metrics"]
    assert on_disk["recommendations"] == data["recommendations"]
    assert "| Quality score | 94 |" in (root / data["files"]["md"]).read_text()
    assert "<span class='ok' id='verdict'>PASSED</span>" in (root / data["files"]["html"]).read_text()

    write(root, REPORT_REGRESSION)
    second, _ = await call_tool("report", "quality_report", {"profile": "python"})
    regressed = second.structured_content
    assert regressed["metrics"]["lint"]["by_rule"] == {"F401": 1}
    assert regressed["metrics"]["security"]["by_severity"] == {"high": 1, "medium": 0, "low": 1}
    assert regressed["passed"] is False
    # lib/shell.py is imported by no test: line coverage 3 of 8 statements.
    assert regressed["metrics"]["coverage"]["line_percent"] == 37.5
    # 40 + 25 * 0.375 + 0 (1 finding in 12 lines is over 20 per 1000) + 20 * (1 - (10 + 1) / 20) = 58.375
    assert regressed["score"]["value"] == 58
    failed = [c for c in regressed["thresholds"] if c["passed"] is False]
    assert [(c["name"], c["actual"]) for c in failed] == [
        ("min_coverage", 37.5),
        ("max_high_severity", 1),
        ("min_score", 58),
    ]
    assert "Changed module lib/shell.py is not imported by any test" in regressed["recommendations"]
    history = (root / ".paradise/reports/history.jsonl").read_text().splitlines()
    assert [json.loads(line)["score"] for line in history] == [94, regressed["score"]["value"]]

    trends, _ = await call_tool("report", "quality_trends", {"last": 5})
    t = trends.structured_content
    assert t["count"] == 2
    assert t["trends"]["lint_findings"] == "worsening"
    assert t["trends"]["security_findings"] == "worsening"
    assert t["changes_since_previous"]["score"]["delta"] == regressed["score"]["value"] - 94
    assert "Lint findings rose from 0 to 1 (F401 +1)" in t["recommendations"]
    assert (
        "2 new security finding(s) since the previous run: B404 lib/shell.py; B602 lib/shell.py"
        in (t["recommendations"])
    )
    assert f"Quality score fell from 94 to {regressed['score']['value']}" in t["recommendations"]


async def test_quick_report_on_a_workspace_without_tests(call_tool, quality_servers) -> None:
    result, _ = await call_tool("empty", "quality_report", {"profile": "quick"})
    data = result.structured_content
    assert data["status"] == "partial"
    assert data["metrics"]["tests"]["total"] == 0
    assert data["score"]["components"]["tests"]["earned"] == 0.0
    assert data["score"]["excluded"] == ["coverage", "performance", "security"]
    assert "No tests ran: add tests (test_*.py) so changes can be verified" in data["recommendations"]
    assert (quality_servers["empty"].workspace / data["files"]["json"]).is_file()
    trends, _ = await call_tool("empty", "quality_trends")
    assert trends.structured_content["count"] == 1
    assert trends.structured_content["note"] == "at least two quality_report runs are needed to show a trend"


async def test_unknown_profile_is_a_structured_error(call_tool) -> None:
    result, _ = await call_tool("passing", "quality_report", {"profile": "nope"})
    assert result.is_error is True
    assert result.structured_content["error"]["code"] == "unknown_profile"
