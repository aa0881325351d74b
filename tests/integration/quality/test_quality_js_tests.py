"""run_tests and lint on JavaScript/TypeScript workspaces, running the real jest, vitest, eslint and
prettier of the bundled toolchain through the real server and MCP client."""

from __future__ import annotations

from typing import Any

from run_facts import the_failure


async def reply(js_call, name: str, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """The structured content of one call, for the tests that read nothing else of the reply."""
    result, _ = await js_call(name, tool, args)
    return result.structured_content


async def test_jest_failures_with_file_line_and_istanbul_coverage(js_call) -> None:
    result, progress = await js_call("jest", "run_tests")
    data = result.structured_content
    assert data["status"] == "failed"  # one test failed: never "ok"
    assert data["counts"] == {"total": 3, "passed": 2, "failed": 1, "skipped": 0, "errors": 0}
    [failure] = data["failures"]
    assert failure["runner"] == "jest"
    assert failure["test"] == "__tests__/cart.test.js::cart applies the discount"
    assert (failure["file"], failure["line"]) == ("__tests__/cart.test.js", 8)
    assert failure["message"].startswith("Error: expect(received).toBe(expected)")
    assert "Expected: 8" in failure["message"] and "Received: 9" in failure["message"]
    cov = data["coverage"]
    assert cov["source"] == "jest"
    assert set(cov["files"]) == {"src/cart.js", "src/pricing.js"}
    pricing = cov["files"]["src/pricing.js"]
    assert (pricing["lines_covered"], pricing["lines_total"]) == (3, 5)  # the throw and unused() never run
    assert (pricing["branches_covered"], pricing["branches_total"]) == (1, 2)
    assert cov["by_language"]["javascript"]["lines_total"] == cov["total"]["lines_total"]
    jest = data["runners"]["jest"]
    assert jest["version"].startswith("30.") and jest["package"] == "."
    assert "python" not in data["runners"]  # no Python tests: not reported as a gap
    assert "2 passed, 1 failed" in result.content[0].text
    assert any("jest (.)" in (message or "") for _, _, message in progress) or progress


async def test_jest_path_and_keyword_filters(js_call) -> None:
    by_path = await reply(js_call, "jest", "run_tests", {"path": "__tests__/pricing.test.js", "coverage": False})
    assert by_path["counts"] == {"total": 1, "passed": 1, "failed": 0, "skipped": 0, "errors": 0}
    assert by_path["coverage"] is None
    by_keyword = await reply(js_call, "jest", "run_tests", {"keyword": "adds", "coverage": False})
    counts = by_keyword["counts"]
    # the tests -t filtered out are not "skipped": they were not selected
    assert (counts["passed"], counts["failed"], counts["skipped"]) == (1, 0, 0)
    assert by_keyword["deselected"] == 2


async def test_vitest_typescript_results_and_coverage(js_call) -> None:
    data = await reply(js_call, "vitest", "run_tests")
    assert data["counts"] == {"total": 4, "passed": 2, "failed": 1, "skipped": 1, "errors": 0}
    message = "AssertionError: expected 10 to be 11 // Object.is equality"
    assert the_failure(data) == ("vitest", "src/math.test.ts::math clamps high", "src/math.test.ts", 12, message)
    math = data["coverage"]["files"]["src/math.ts"]
    assert math["lines_covered"] == math["lines_total"] and math["branches_total"] >= 2
    assert data["runners"]["vitest"]["version"].startswith("5.")
    assert not (js_workspace_files(data) & {"node_modules"})


def js_workspace_files(data) -> set[str]:
    """Top-level names a run left in the workspace, read from the coverage paths (none may be caches)."""
    return {path.split("/", 1)[0] for path in data["coverage"]["files"]}


async def test_monorepo_runs_pytest_jest_and_vitest_and_merges_them(js_call, js_servers) -> None:
    data = await reply(js_call, "mixed", "run_tests")
    assert set(data["runners"]) == {"python", "jest:packages/api", "vitest:packages/web"}
    assert data["counts"] == {"total": 4, "passed": 3, "failed": 1, "skipped": 0, "errors": 0}
    assert [(f["runner"], f["file"], f["line"]) for f in data["failures"]] == [
        ("vitest", "packages/web/src/title.test.js", 7)
    ]
    cov = data["coverage"]
    assert cov["source"] == "pytest+jest+vitest"
    assert {"tools/slug.py", "packages/api/src/route.js", "packages/web/src/title.js"} <= set(cov["files"])
    by_language = cov["by_language"]
    assert (
        by_language["python"]["lines_total"] + by_language["javascript"]["lines_total"] == cov["total"]["lines_total"]
    )
    web_only = await reply(js_call, "mixed", "run_tests", {"path": "packages/web", "coverage": False})
    assert set(web_only["runners"]) == {"vitest:packages/web"}  # no empty pytest run
    assert web_only["counts"]["total"] == 2
    python_only = await reply(js_call, "mixed", "run_tests", {"path": "tests", "coverage": False})
    assert set(python_only["runners"]) == {"python"}
    workspace = js_servers["mixed"].workspace
    assert not (workspace / "packages" / "web" / "node_modules").exists()  # vitest left no cache behind


async def test_eslint_default_config_and_prettier_findings(js_call) -> None:
    data = await reply(js_call, "jslint", "lint")
    assert data["status"] == "ok"
    found = [(f["tool"], f["file"], f["line"], f["rule"], f["severity"]) for f in data["findings"]]
    assert found == [
        ("eslint", "src/app.js", 1, "no-unused-vars", "error"),
        ("eslint", "src/app.js", 2, "no-unused-vars", "error"),  # `name`: the body uses the typo `nam`
        ("eslint", "src/app.js", 3, "no-undef", "error"),
        ("eslint", "src/typed.ts", 1, "@typescript-eslint/no-explicit-any", "error"),
        ("eslint", "src/typed.ts", 2, "prefer-const", "error"),
        ("prettier", "src/typed.ts", 3, "prettier", "warning"),
    ]
    assert data["counts"]["by_tool"] == {"eslint": 5, "prettier": 1}
    eslint = data["linters"]["eslint"]
    assert eslint["config"].startswith("default (") and eslint["config"].endswith("eslint.config.mjs)")
    assert data["linters"]["prettier"]["files_checked"] == 3
    assert "ruff" not in data["linters"]  # no Python in the workspace: not a gap


async def test_the_workspace_eslint_config_wins(js_call) -> None:
    data = await reply(js_call, "ownconfig", "lint")
    eslint = [f for f in data["findings"] if f["tool"] == "eslint"]
    assert [(f["file"], f["line"], f["rule"]) for f in eslint] == [("index.js", 1, "no-console")]
    assert data["linters"]["eslint"]["config"] == "eslint.config.js"


async def test_a_hanging_jest_run_is_killed_at_its_timeout(js_call) -> None:
    data = await reply(js_call, "jesthang", "run_tests", {"timeout_seconds": 8, "coverage": False})
    jest = data["runners"]["jest"]
    assert jest["timed_out"] is True and jest["error"]["code"] == "timeout"
    assert data["status"] in ("partial", "error")
    assert {"what": "jest", "code": "timeout", "message": jest["error"]["message"]} in data["errors"]
