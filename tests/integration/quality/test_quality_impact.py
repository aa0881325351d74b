"""analyze_changes and run_impacted_tests on real git repositories through the real server."""

from __future__ import annotations

from pathlib import Path

from quality_workspaces import BROKEN, git, write

from instances.quality.core.profiles import load_profiles
from instances.quality.core.workspace import Workspace
from instances.quality.impact.impact import run_impacted_tests


async def test_analyze_changes_maps_the_diff_to_functions_and_impacted_tests(call_tool) -> None:
    result, _ = await call_tool("gitrepo", "analyze_changes")
    data = result.structured_content
    assert data["status"] == "ok"
    assert len(data["base_commit"]) == 40
    assert data["changed_files"] == [
        {"path": "app/models.py", "status": "modified", "added_lines": 1, "removed_lines": 1}
    ]
    assert [(f["name"], f["change"], f["start_line"], f["end_line"]) for f in data["changed_functions"]] == [
        ("price_with_tax", "modified", 4, 5)
    ]
    assert data["changed_modules"] == ["app.models"]
    impacted = {t["path"]: t for t in data["impacted_tests"]}
    assert set(impacted) == {"tests/test_models.py", "tests/test_service.py", "tests/test_api.py"}
    assert impacted["tests/test_models.py"]["reason"] == "imports app.models"
    assert impacted["tests/test_api.py"]["chain"] == [
        "tests/test_api.py",
        "app/api.py",
        "app/service.py",
        "app/models.py",
    ]
    assert impacted["tests/test_api.py"]["reason"] == "imports (transitively) app.api -> app.service -> app.models"
    graph = data["import_graph"]
    assert (graph["modules"], graph["test_modules"]) == (9, 4)
    assert graph["edges"] == [] and graph["edge_count"] > 0  # edges only when asked
    assert data["full_suite_required"] is False
    assert "3 test files impacted of 4" in result.content[0].text
    with_edges, _ = await call_tool("gitrepo", "analyze_changes", {"include_edges": True})
    assert {"from": "app/api.py", "to": "app/service.py"} in with_edges.structured_content["import_graph"]["edges"]


async def test_run_impacted_tests_runs_only_the_affected_tests_and_finds_the_breakage(call_tool) -> None:
    result, _ = await call_tool("gitrepo", "run_impacted_tests")
    data = result.structured_content
    assert data["mode"] == "impacted"
    assert [t["path"] for t in data["selected_tests"]] == [
        "tests/test_api.py",
        "tests/test_models.py",
        "tests/test_service.py",
    ]
    assert data["counts"] == {"total": 3, "passed": 0, "failed": 3, "skipped": 0, "errors": 0}
    assert sorted(data["tests"]["failed_tests"]) == [
        "tests/test_api.py::test_handle_total",
        "tests/test_models.py::test_price_with_tax",
        "tests/test_service.py::test_total_gross",
    ]
    assert data["reason"] == "3 of 4 test files depend on the changes"


async def test_full_suite_runs_when_the_graph_cannot_decide(call_tool) -> None:
    result, _ = await call_tool("fallback", "run_impacted_tests")
    data = result.structured_content
    assert data["mode"] == "full"
    assert data["fallback_reasons"] == [
        "app/plugins.py imports dynamically (import_module of a computed name at line 5): the import graph "
        "cannot tell which tests load what it loads",
        "tests/conftest.py changed: its fixtures and hooks can affect any test",
    ]
    assert data["counts"] == {"total": 2, "passed": 2, "failed": 0, "skipped": 0, "errors": 0}
    analysis, _ = await call_tool("fallback", "analyze_changes", {"include_edges": False})
    assert analysis.structured_content["full_suite_required"] is True
    assert analysis.structured_content["import_graph"]["edges"] == []
    assert "Full suite required" in analysis.content[0].text


async def test_without_git_analysis_errors_and_impacted_falls_back(call_tool) -> None:
    analysis, _ = await call_tool("broken", "analyze_changes")
    assert analysis.is_error is True
    assert analysis.structured_content["error"]["code"] == "not_a_git_repository"
    impacted, _ = await call_tool("broken", "run_impacted_tests")
    data = impacted.structured_content
    assert data["mode"] == "full"
    assert data["reason"].endswith("is not inside a git repository: cannot tell what changed")
    assert data["counts"]["passed"] == 2


async def test_unknown_base_ref_is_a_structured_error(call_tool) -> None:
    result, _ = await call_tool("gitrepo", "analyze_changes", {"base_ref": "no-such-branch"})
    assert result.is_error is True
    assert result.structured_content["error"] == {
        "code": "bad_ref",
        "message": "git ref 'no-such-branch' does not name a commit",
    }
    injected, _ = await call_tool("gitrepo", "analyze_changes", {"base_ref": "--output=/tmp/x"})
    assert injected.structured_content["error"]["code"] == "bad_ref"


async def test_repository_without_commits_runs_the_full_suite(tmp_path: Path) -> None:
    write(tmp_path, {k: v for k, v in BROKEN.items() if k != "pyproject.toml"})
    git(tmp_path, "init", "-q")
    result = await run_impacted_tests(Workspace.open(tmp_path), load_profiles()["quick"])
    assert result["mode"] == "full"
    assert (
        result["reason"]
        == "the repository has no commits yet, so there is no HEAD to compare: cannot tell what changed"
    )
    assert result["counts"]["passed"] == 2
