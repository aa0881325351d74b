"""Finding parsers (ruff, eslint, bandit, pip-audit, npm audit) and report files/history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instances.quality.js.jslint import parse_eslint_report
from instances.quality.lint import parse_ruff_json, ruff_severity, summarize_findings
from instances.quality.profiles import Profile
from instances.quality.render import to_html, to_markdown
from instances.quality.reports import public, quality_report, quality_trends, read_history, write_report_files
from instances.quality.security import is_test_path, parse_bandit_json, parse_npm_audit_json, parse_pip_audit_json
from instances.quality.workspace import Workspace

DATA = Path(__file__).parent / "data"


def test_ruff_findings_and_severity(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path)
    entries = [
        {
            "code": "F401",
            "message": "`os` imported but unused",
            "filename": str(tmp_path / "a.py"),
            "location": {"row": 1, "column": 8},
            "end_location": {"row": 1, "column": 10},
            "fix": {"edits": []},
            "severity": "error",
        },
        {
            "code": "F821",
            "message": "Undefined name `x`",
            "filename": str(tmp_path / "pkg/b.py"),
            "location": {"row": 4, "column": 5},
            "end_location": {"row": 4, "column": 6},
            "fix": None,
        },
        {
            "code": None,
            "message": "SyntaxError: Expected an expression",
            "filename": str(tmp_path / "c.py"),
            "location": {"row": 2, "column": 1},
            "end_location": {"row": 2, "column": 2},
            "fix": None,
        },
    ]
    findings = parse_ruff_json(entries, ws)
    assert [(f["file"], f["line"], f["rule"], f["severity"], f["fixable"]) for f in findings] == [
        ("a.py", 1, "F401", "warning", True),
        ("pkg/b.py", 4, "F821", "error", False),
        ("c.py", 2, "syntax-error", "error", False),
    ]
    assert ruff_severity({"code": "E902"}) == "error" and ruff_severity({"code": "E501"}) == "warning"
    assert summarize_findings(findings) == {
        "total": 3,
        "by_rule": {"F401": 1, "F821": 1, "syntax-error": 1},
        "by_severity": {"warning": 1, "error": 2},
        "files": 3,
        "by_tool": {"ruff": 3},
    }


def test_eslint_findings_from_real_output() -> None:
    ws = Workspace(Path("/ws"))
    findings = parse_eslint_report(json.loads((DATA / "eslint.json").read_text()), ws)
    assert [(f["file"], f["line"], f["rule"], f["severity"]) for f in findings] == [
        ("src/bad.js", 1, "eqeqeq", "error"),
        ("src/bad.js", 1, "no-undef", "error"),
    ]
    assert findings[1]["message"] == "'undefinedThing' is not defined."


def test_bandit_pip_audit_and_npm_audit_parsers() -> None:
    ws = Workspace(Path("/ws"))
    bandit = {
        "results": [
            {
                "filename": "/ws/app/x.py",
                "line_number": 12,
                "test_id": "B602",
                "test_name": "subprocess_popen_with_shell_equals_true",
                "issue_severity": "HIGH",
                "issue_confidence": "HIGH",
                "issue_text": "shell=True",
                "issue_cwe": {"id": 78},
                "more_info": "https://bandit.readthedocs.io/",
            }
        ],
        "errors": [{"filename": "/ws/app/bad.py", "reason": "syntax error while parsing AST from file"}],
    }
    findings, errors = parse_bandit_json(bandit, ws)
    assert findings[0] | {"more_info": None} == {
        "tool": "bandit",
        "file": "app/x.py",
        "line": 12,
        "rule": "B602",
        "name": "subprocess_popen_with_shell_equals_true",
        "severity": "high",
        "confidence": "high",
        "message": "shell=True",
        "cwe": 78,
        "more_info": None,
    }
    assert errors == [{"file": "app/bad.py", "reason": "syntax error while parsing AST from file"}]
    audit = parse_pip_audit_json(
        {
            "dependencies": [
                {
                    "name": "requests",
                    "version": "2.19.0",
                    "vulns": [
                        {
                            "id": "PYSEC-2018-28",
                            "fix_versions": ["2.20.0"],
                            "aliases": ["CVE-2018-18074"],
                            "description": "d",
                        }
                    ],
                },
                {
                    "name": "private",
                    "skip_reason": "Dependency not found on PyPI and could not be audited: private (1.0)",
                },
            ]
        }
    )
    assert audit["vulnerabilities"][0]["id"] == "PYSEC-2018-28" and audit["audited"] == 2
    assert audit["not_audited"] == [
        {"package": "private", "reason": "Dependency not found on PyPI and could not be audited: private (1.0)"}
    ]
    refused = parse_npm_audit_json(
        {
            "message": "405 Method Not Allowed - POST https://r/-/npm/v1/security/advisories/bulk",
            "statusCode": 405,
            "error": {"summary": ""},
        }
    )
    assert refused == {
        "status": "unavailable",
        "reason": "the npm advisory service did not answer: 405 Method "
        "Not Allowed - POST https://r/-/npm/v1/security/advisories/bulk",
    }
    found = parse_npm_audit_json(
        {
            "vulnerabilities": {"minimist": {"severity": "critical", "range": "<1.2.6", "fixAvailable": True}},
            "metadata": {"vulnerabilities": {"critical": 1, "high": 0, "total": 1}},
        }
    )
    assert found["vulnerabilities"] == [
        {"package": "minimist", "severity": "critical", "range": "<1.2.6", "fix_available": True}
    ]
    assert found["by_severity"] == {"critical": 1, "high": 0}
    assert is_test_path("tests/helpers.py") and is_test_path("pkg/test_x.py") and not is_test_path("pkg/x.py")


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
