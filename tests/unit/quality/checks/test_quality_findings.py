"""Findings of every check from real tools' output: ruff (with severity), eslint, bandit, pip-audit and
npm audit."""

from __future__ import annotations

import json
from pathlib import Path

from instances.quality.checks.js_lint import parse_eslint_report
from instances.quality.checks.lint import parse_ruff_json, ruff_severity, summarize_findings
from instances.quality.checks.security import (
    is_test_path,
    parse_bandit_json,
    parse_npm_audit_json,
    parse_pip_audit_json,
)
from instances.quality.core.workspace import Workspace

DATA = Path(__file__).parents[1] / "data"


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
