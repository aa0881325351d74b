"""Report files, history and trends on disk; Markdown/HTML rendering; where files go when the workspace
cannot take them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instances.quality.core.profiles import Profile
from instances.quality.core.workspace import Workspace
from instances.quality.reports.render import to_html, to_markdown
from instances.quality.reports.reports import public, quality_report, quality_trends, read_history, write_report_files

DATA = Path(__file__).parents[1] / "data"



def _report(profile: str, score: int, stamp: str) -> dict:
    return {
        "schema": 1,
        "generated_at": f"2026-01-0{score % 9 + 1}T00:00:00+00:00",
        "_stamp": stamp,
        "workspace": "/ws",
        "profile": {"name": profile},
        "duration_s": 1.0,
        "passed": score >= 50,
        "metrics": {
            "tests": {"passed": 2, "failed": 0, "skipped": 0, "errors": 0, "pass_rate": 100.0},
            "lint": {"total": 1, "by_rule": {"F401": 1}},
        },
        "score": {"value": score, "components": {}, "excluded": []},
        "thresholds": [{"name": "min_score", "limit": 50, "actual": score, "passed": score >= 50}],
        "recommendations": ["Resolve 1 lint finding(s); most frequent: F401 (1)"],
        "skipped": [],
        "sections": {
            "lint": {"findings": [{"file": "a.py", "line": 1, "rule": "F401", "message": "<script>alert(1)</script>"}]},
            "tests": {"coverage": {"files": {"a.py": {"_executed_lines": [1]}}}},
        },
    }


def test_report_files_history_and_trends_on_disk(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path)
    first = _report("quick", 80, "20260101T000000000Z")
    files = write_report_files(ws, first)
    assert files == {
        kind: f".paradise/reports/report-20260101T000000000Z-quick.{kind}" for kind in ("json", "md", "html")
    }
    on_disk = json.loads((tmp_path / files["json"]).read_text())
    assert "_stamp" not in on_disk and "_executed_lines" not in json.dumps(on_disk)
    assert on_disk == public(first)
    html = (tmp_path / files["html"]).read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    write_report_files(ws, _report("quick", 40, "20260102T000000000Z"))
    (tmp_path / ".paradise/reports/history.jsonl").open("a").write("not json\n")
    entries, bad = read_history(ws)
    assert [e["score"] for e in entries] == [80, 40] and bad == 1
    trends = quality_trends(ws, last=5)
    assert trends["unreadable_lines"] == 1
    assert trends["changes_since_previous"]["score"] == {"previous": 80, "last": 40, "delta": -40}
    assert trends["recommendations"] == ["Quality score fell from 80 to 40"]
    assert quality_trends(ws, profile="python")["note"] == "no quality_report with profile 'python' in the history"


def test_markdown_and_html_show_verdict_thresholds_and_findings() -> None:
    report = public(_report("python", 40, "s"))
    markdown = to_markdown(report)
    assert "Result: **FAILED**" in markdown
    assert "| min_score | 50 | 40 | FAILED |" in markdown
    assert "| a.py:1 | F401 | <script>alert(1)</script> |" in markdown
    assert "<span class='bad' id='verdict'>FAILED</span>" in to_html(report)


async def test_report_files_go_to_the_state_when_the_workspace_cannot_take_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARADISE_QUALITY_STATE", str(tmp_path / "state"))
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "m.py").write_text("import os\n")
    (tmp_path / "ws" / ".paradise").write_text("a file where the reports directory should be")
    result = await quality_report(Workspace.open(tmp_path / "ws"), Profile(name="lintonly", tools=("lint",)))
    assert result["status"] == "ok"
    assert Path(result["files"]["json"]).is_file() and result["files"]["json"].startswith(str(tmp_path / "state"))


async def test_report_is_still_returned_when_no_place_can_take_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "m.py").write_text("import os\n")
    (tmp_path / ".paradise").write_text("a file where the reports directory should be")
    monkeypatch.setenv("PARADISE_QUALITY_STATE", str(tmp_path / "m.py" / "state"))  # under a file: unusable
    monkeypatch.setenv("HOME", str(tmp_path / "m.py"))
    result = await quality_report(Workspace.open(tmp_path), Profile(name="lintonly", tools=("lint",)))
    assert result["status"] == "partial"
    assert result["files"] is None
    assert result["metrics"]["lint"]["by_rule"] == {"F401": 1}
    assert result["score"]["value"] == 0  # one finding in one line: far over 20 per 1000 lines
    assert result["skipped"][-1]["what"] == "report files"
    assert "can be written" in result["skipped"][-1]["reason"]
