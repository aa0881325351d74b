"""A check that could not run is an error with the reason and the fix (`error`, or `incomplete` when others
ran), never `skipped`/"nothing to do": a linter whose tool is missing, a dependency audit whose manifest
does not parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from instances.quality.checks import lint as lint_module
from instances.quality.checks.lint import lint
from instances.quality.checks.security import security_scan
from instances.quality.core.profiles import load_profiles
from instances.quality.core.workspace import Workspace

PROFILE = load_profiles()["quick"]


async def test_a_missing_linter_is_an_error_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "app.py").write_text("import os\n", encoding="utf-8")
    monkeypatch.setattr(lint_module, "find_executable", lambda name, root: None)  # no ruff on this machine
    result = await lint(Workspace.open(tmp_path), PROFILE, javascript=False)
    assert result["status"] == "error", result
    [error] = result["errors"]
    assert (error["what"], error["code"]) == ("ruff", "tool_missing") and "quality" in error["fix"]


async def test_an_unreadable_manifest_is_an_audit_that_could_not_run(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\nname = 'x'\n", encoding="utf-8")
    result = await security_scan(Workspace.open(tmp_path), PROFILE, include_code=False, javascript=False)
    assert result["status"] == "error", result
    [error] = result["errors"]
    assert error["what"] == "pip-audit" and "pyproject.toml" in error["message"] and error["fix"]
