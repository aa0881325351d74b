"""JS/TS change impact on a real git repository through the real server: the import graph (tsconfig
paths, a workspace package's exports, index files, `.js` naming `.ts`), runs of exactly the impacted
vitest files, and full-suite runs (never "no tests") for changes no graph can map."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from quality_workspaces import git


def reset_after(root: Path) -> Iterator[Path]:
    """``root`` for one test, then back to its commit (edits undone, new files removed)."""
    yield root
    git(root, "checkout", "-q", "--", ".")
    git(root, "clean", "-q", "-fd")


@pytest.fixture
def repo(js_servers) -> Iterator[Path]:
    """The tsimpact repository, reset to its commit after each test."""
    yield from reset_after(js_servers["tsimpact"].workspace)


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


async def test_a_change_in_a_workspace_package_selects_exactly_its_tests(js_call, repo: Path) -> None:
    edit(repo, "packages/format/src/money.ts", "EUR", "EUR!")
    analysis, _ = await js_call("tsimpact", "analyze_changes", {"include_edges": True})
    data = analysis.structured_content
    [impacted] = data["impacted_tests"]
    assert impacted["path"] == "tests/cart.test.ts" and impacted["runner"] == "vitest"
    # tests/cart.test.ts -> "../src/cart.js" (the .ts source) -> "@shop/format" (exports -> src/index.ts)
    assert impacted["chain"] == [
        "tests/cart.test.ts",
        "src/cart.ts",
        "packages/format/src/index.ts",
        "packages/format/src/money.ts",
    ]
    assert data["full_suite_required"] is False
    # the TypeScript change is mapped to the function it touches (the TypeScript compiler's parser)
    touched = [(f["path"], f["name"], f["kind"], f["change"]) for f in data["changed_functions"]]
    assert touched == [("packages/format/src/money.ts", "money", "function", "modified")]
    js = data["javascript"]
    assert js["packages"] == [{"package": ".", "runner": "vitest", "test_files": 3, "source": "listed by vitest"}]
    edges = {(e["from"], e["to"]) for e in js["import_graph"]["edges"]}
    assert ("src/cart.ts", "lib/tax.ts") in edges  # "@lib/tax" through tsconfig paths
    assert ("src/stats.ts", "src/util/index.ts") in edges  # "./util" is a directory with index.ts
    run, progress = await js_call("tsimpact", "run_impacted_tests")
    result = run.structured_content
    assert result["mode"] == "impacted"
    assert [t["path"] for t in result["selected_tests"]] == ["tests/cart.test.ts"]
    assert result["counts"] == {"total": 1, "passed": 0, "failed": 1, "skipped": 0, "errors": 0}
    [failure] = result["tests"]["failures"]
    assert (failure["file"], failure["line"]) == ("tests/cart.test.ts", 5)
    assert "12.00 EUR!" in failure["message"]
    assert result["reason"] == "vitest impacted: 1 test file(s) import the changes"
    # a TypeScript-only workspace: no Python figure, no risk paragraph without recorded runs, no Serena step
    assert "total_test_files" not in result
    assert "Risk method" not in run.content[0].text and "Risk method" not in analysis.content[0].text
    assert not any("Serena" in (message or "") for _, _, message in progress)


async def test_a_tsconfig_path_alias_change_and_an_untested_module(js_call, repo: Path) -> None:
    edit(repo, "lib/tax.ts", "1.2", "1.25")
    (repo / "src" / "orphan.ts").write_text("export const orphan = 1;\n", encoding="utf-8")
    analysis, _ = await js_call("tsimpact", "analyze_changes")
    data = analysis.structured_content
    assert [(t["path"], t["chain"][-1]) for t in data["impacted_tests"]] == [("tests/cart.test.ts", "lib/tax.ts")]
    assert data["untested_changes"] == ["src/orphan.ts"]


async def test_a_data_file_no_import_reaches_runs_the_full_suite(js_call, repo: Path) -> None:
    (repo / "data" / "rates.json").write_text('{"vat": 21}\n', encoding="utf-8")
    run, _ = await js_call("tsimpact", "run_impacted_tests")
    result = run.structured_content
    assert result["mode"] == "full"
    assert result["counts"]["total"] == 3  # every vitest file of the package
    [reason] = result["fallback_reasons"]
    assert reason.startswith("vitest: data/rates.json is not a module that any import reaches")
    assert [(e["runner"], e["mode"]) for e in result["by_runner"]] == [("vitest", "full")]


async def test_lockfile_config_and_computed_imports_force_the_full_suite(js_call, repo: Path) -> None:
    (repo / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {}}\n', encoding="utf-8")
    edit(repo, "src/loader.js", "import(name)", "import(`./plugins/${name}.js`)")
    analysis, _ = await js_call("tsimpact", "analyze_changes")
    reasons = analysis.structured_content["fallback_reasons"]
    assert any(r.startswith("vitest (.): package-lock.json changed: configuration or dependencies") for r in reasons)
    assert any("src/loader.js imports a computed name (import() at line 2)" in r for r in reasons)
    assert analysis.structured_content["full_suite_required"] is True


async def test_nothing_changed_is_the_only_none(js_call, repo: Path) -> None:
    run, _ = await js_call("tsimpact", "run_impacted_tests")
    assert (run.structured_content["mode"], run.structured_content["reason"]) == ("none", "nothing changed")


@pytest.fixture
def mixed(js_servers) -> Iterator[Path]:
    """The Python + jest + vitest repository, reset to its commit after each test."""
    yield from reset_after(js_servers["mixedrepo"].workspace)


async def test_mixed_repo_runs_only_the_runner_a_change_reaches(js_call, mixed: Path) -> None:
    edit(mixed, "packages/api/src/route.js", '"home"', '"start"')
    run, _ = await js_call("mixedrepo", "run_impacted_tests")
    result = run.structured_content
    assert [(e["runner"], e["package"], e["mode"]) for e in result["by_runner"]] == [
        ("jest", "packages/api", "impacted")
    ]
    assert set(result["tests"]["runners"]) == {"jest:packages/api"}  # neither pytest nor vitest ran
    assert result["selected_tests"] == [
        {"path": "packages/api/src/route.test.js", "runner": "jest", "reason": "imports packages/api/src/route.js"}
    ]
    assert result["counts"]["failed"] == 1


async def test_mixed_repo_root_lockfile_runs_every_js_package_and_not_pytest(js_call, mixed: Path) -> None:
    (mixed / "package-lock.json").write_text('{"lockfileVersion": 3}\n', encoding="utf-8")
    run, _ = await js_call("mixedrepo", "run_impacted_tests")
    result = run.structured_content
    assert result["mode"] == "full"
    assert sorted((e["key"], e["mode"]) for e in result["by_runner"]) == [
        ("jest:packages/api", "full"),
        ("vitest:packages/web", "full"),
    ]
    assert result["counts"]["total"] == 3
