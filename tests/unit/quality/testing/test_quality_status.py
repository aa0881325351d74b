"""Honest status of a merged test result: failures make it `failed` (never `ok`), a runner that could not run
makes it `incomplete` (never `partial` or `skipped`), a package.json that does not parse is such a runner."""

from __future__ import annotations

from pathlib import Path

from instances.quality.core.profiles import load_profiles
from instances.quality.core.workspace import Workspace
from instances.quality.testing.js_tests import run_js_tests
from instances.quality.testing.testmerge import combine_sections


def _section(status: str, passed: int = 0, failed: int = 0, runner: str = "pytest") -> dict:
    counts = {"total": passed + failed, "passed": passed, "failed": failed, "skipped": 0, "errors": 0}
    return {"runner": runner, "status": status, "counts": counts, "failures": [], "skipped": []}


def test_failures_make_the_run_failed_and_a_clean_run_ok() -> None:
    assert combine_sections({"python": _section("ok", passed=3)})["status"] == "ok"
    assert combine_sections({"python": _section("ok", passed=2, failed=1)})["status"] == "failed"
    timed_out = combine_sections({"python": _section("partial", passed=2, failed=1)})
    assert timed_out["status"] == "partial"  # already says something went wrong; the counts say the rest


def test_a_runner_that_could_not_run_makes_the_run_incomplete() -> None:
    broken = {"runner": "jest", "status": "error", "error": {"code": "tool_missing", "message": "no jest"}}
    merged = combine_sections({"python": _section("ok", passed=3), "jest": broken})
    assert merged["status"] == "incomplete" and merged["errors"][0]["code"] == "tool_missing"


async def test_an_unreadable_package_json_is_an_error_not_a_skip(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "web", "scripts": {', encoding="utf-8")
    sections = await run_js_tests(Workspace.open(tmp_path), load_profiles()["quick"])
    [section] = sections.values()
    assert section["status"] == "error" and section["error"]["code"] == "unreadable_manifest"
    assert "package.json" in section["error"]["fix"]
