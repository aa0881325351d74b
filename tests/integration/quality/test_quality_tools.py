"""run_tests, lint and security_scan through the real server and the real MCP client."""

from __future__ import annotations

import time

from js_workspaces import require_node_toolchain
from run_facts import the_failure


async def test_server_lists_every_tool_with_arguments(quality_servers) -> None:
    from mcp import Client

    async with Client(quality_servers["passing"].url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {
        "run_tests",
        "lint",
        "security_scan",
        "analyze_changes",
        "run_impacted_tests",
        "quality_report",
        "quality_trends",
        "list_profiles",
        "run_e2e",
        "run_api_tests",
        "run_performance",
    }
    assert set(tools["run_e2e"].input_schema["properties"]) >= {"path", "start_command", "wait_url", "timeout_seconds"}
    assert set(tools["run_api_tests"].input_schema["properties"]) >= {"collection", "environment", "start_command"}
    assert tools["run_performance"].input_schema["required"] == ["url"]
    assert set(tools["run_tests"].input_schema["properties"]) == {
        "path",
        "keyword",
        "tests",
        "coverage",
        "timeout_seconds",
        "workers",
        "max_failures",
        "profile",
        "detail",
        "page",
        "run_id",
    }
    assert set(tools["analyze_changes"].input_schema["properties"]) == {
        "base_ref",
        "include_edges",
        "profile",
        "detail",
        "page",
        "run_id",
    }
    assert tools["lint"].output_schema["type"] == "object"


async def test_run_tests_counts_and_coverage_of_a_passing_project(call_tool) -> None:
    result, _ = await call_tool("passing", "run_tests")
    data = result.structured_content
    assert result.is_error is False
    assert data["status"] == "ok"
    assert data["counts"] == {"total": 5, "passed": 5, "failed": 0, "skipped": 0, "errors": 0}
    assert data["failures"] == []
    cov = data["coverage"]
    assert cov["source"] == "pytest"
    assert cov["total"]["lines_total"] == 17 and cov["total"]["lines_covered"] == 15
    assert cov["total"]["line_percent"] == 88.24
    assert (cov["total"]["branches_total"], cov["total"]["branches_covered"]) == (4, 3)
    assert cov["files"]["shop/cart.py"]["line_percent"] == 100.0
    pricing = cov["files"]["shop/pricing.py"]
    assert (pricing["lines_covered"], pricing["lines_total"], pricing["missing_lines"]) == (4, 6, [3, 8])
    assert pricing["branch_percent"] == 50.0
    assert not any(path.startswith("tests/") for path in cov["files"])
    assert data["runners"]["python"]["interpreter"]["source"] == "server"
    assert "5 passed, 0 failed" in result.content[0].text


async def test_run_tests_filters_by_path_and_keyword(call_tool) -> None:
    by_path, _ = await call_tool("passing", "run_tests", {"path": "tests/test_pricing.py", "coverage": False})
    assert by_path.structured_content["counts"]["passed"] == 2
    assert by_path.structured_content["coverage"] is None
    by_keyword, _ = await call_tool("passing", "run_tests", {"keyword": "discount", "coverage": False})
    # test_discounted_total, test_discount and test_no_discount match -k discount
    assert by_keyword.structured_content["counts"] == {"total": 3, "passed": 3, "failed": 0, "skipped": 0, "errors": 0}
    outside, _ = await call_tool("passing", "run_tests", {"path": "../elsewhere"})
    assert outside.is_error is True
    assert outside.structured_content["error"]["code"] == "bad_path"


async def test_run_tests_reports_the_failure_with_file_line_and_message(call_tool) -> None:
    result, _ = await call_tool("failing", "run_tests")
    data = result.structured_content
    assert data["counts"] == {"total": 3, "passed": 2, "failed": 1, "skipped": 0, "errors": 0}
    message = "AssertionError: two times two\nassert 4 == 5"
    assert the_failure(data) == ("pytest", "tests/test_calc.py::test_mul_wrong", "tests/test_calc.py", 10, message)
    assert data["runners"]["python"]["failed_tests"] == ["tests/test_calc.py::test_mul_wrong"]
    assert data["coverage"]["files"]["calc.py"]["line_percent"] == 100.0
    assert "First failure: tests/test_calc.py:10" in result.content[0].text
    profiles, _ = await call_tool("failing", "list_profiles")
    assert profiles.structured_content["default"] == "comprehensive"  # started with --profile comprehensive


async def test_lint_reports_ruff_findings_and_runs_eslint_with_the_workspace_config(call_tool) -> None:
    result, _ = await call_tool("findings", "lint")
    data = result.structured_content
    assert data["status"] == "ok"
    assert data["counts"]["total"] == 3
    assert data["counts"]["by_rule"] == {"F401": 2, "F841": 1}
    found = [(f["file"], f["line"], f["rule"], f["severity"]) for f in data["findings"]]
    assert found == [
        ("vault/store.py", 2, "F401", "warning"),
        ("vault/store.py", 4, "F401", "warning"),
        ("vault/store.py", 20, "F841", "warning"),
    ]
    assert data["findings"][0]["message"] == "`os` imported but unused"
    assert data["skipped"] == []
    # eslint.config.js is the only JS file: linted (with that config) and formatted, nothing to report
    assert set(data["linters"]) == {"ruff", "eslint", "prettier"}
    assert data["linters"]["eslint"]["config"] == "eslint.config.js"


async def test_security_scan_reports_bandit_findings_and_unreachable_advisories(call_tool) -> None:
    result, _ = await call_tool("findings", "security_scan")
    data = result.structured_content
    found = [(f["file"], f["line"], f["rule"], f["severity"]) for f in data["findings"]]
    assert found == [
        ("vault/store.py", 3, "B404", "low"),
        ("vault/store.py", 8, "B324", "high"),
        ("vault/store.py", 12, "B602", "high"),
        ("vault/store.py", 16, "B307", "medium"),
    ]
    assert data["counts"]["by_severity"] == {"low": 1, "high": 2, "medium": 1}
    bandit = data["scanners"]["bandit"]
    assert (bandit["files_scanned"], bandit["excluded_test_files"]) == (2, 1)
    npm = data["scanners"]["npm-audit"]
    assert npm["status"] == "not_run" and npm["error"]["code"] == "service_unreachable"
    assert "advisory service did not answer" in npm["error"]["message"] and npm["error"]["fix"]
    assert data["status"] == "incomplete"  # bandit ran; the audit could not: never "skipped"
    assert {"what": "pip-audit", "reason": "no declared Python dependencies"} in data["skipped"]
    assert data["error"]["code"] == "check_not_run" and "NODE_EXTRA_CA_CERTS" in data["error"]["fix"]


async def test_security_scan_says_pip_audit_could_not_reach_its_source(call_tool) -> None:
    started = time.monotonic()
    result, _ = await call_tool("empty", "security_scan")
    assert time.monotonic() - started < 30
    pip = result.structured_content["scanners"]["pip-audit"]
    assert pip["status"] == "not_run" and result.structured_content["status"] == "incomplete"
    assert pip["error"]["message"].startswith("vulnerability source unreachable, dependencies NOT audited: ")
    assert pip["declared"]["requirements_files"] == ["requirements.txt"]
    assert result.structured_content["counts"]["total"] == 0
    assert "vulnerability source unreachable" in result.content[0].text


async def test_jest_declared_without_node_modules_runs_the_bundled_jest(call_tool) -> None:
    require_node_toolchain()
    result, _ = await call_tool("findings", "run_tests", {"coverage": False})
    data = result.structured_content
    assert data["counts"]["passed"] == 1  # the pytest test; the workspace has no jest test files
    jest = data["runners"]["jest"]
    assert (jest["status"], jest["counts"]["total"], jest["package"]) == ("ok", 0, ".")
    assert jest["executable"].endswith("node_modules/.bin/jest") and "quality-ws" not in jest["executable"]
    assert data["status"] == "ok"


async def test_workspace_without_tests_is_skipped_not_crashed(call_tool) -> None:
    result, _ = await call_tool("empty", "run_tests")
    data = result.structured_content
    assert result.is_error is False
    assert data["status"] == "skipped"
    assert data["skipped"][0]["reason"] == "no Python test files (test_*.py or *_test.py) in the workspace"
    assert data["counts"]["total"] == 0


async def test_broken_pyproject_and_venv_without_pytest_still_run(call_tool) -> None:
    result, _ = await call_tool("broken", "run_tests")
    data = result.structured_content
    assert data["status"] == "partial"
    assert data["counts"]["passed"] == 2
    python = data["runners"]["python"]
    assert python["interpreter"]["source"] == "server"
    assert python["notes"][0].endswith("/.venv/bin/python has no pytest; using the server's interpreter instead")
    assert data["skipped"][0]["what"] == "pyproject.toml settings"
    assert data["skipped"][0]["reason"].startswith("pyproject.toml is invalid: ")
    linted, _ = await call_tool("broken", "lint")
    assert linted.structured_content["counts"]["by_rule"] == {"RUF200": 1}
    assert "--isolated" in linted.structured_content["notes"][0]


async def test_hanging_suite_times_out_with_partial_result_and_progress(call_tool) -> None:
    started = time.monotonic()
    result, progress = await call_tool("hanging", "run_tests")
    elapsed = time.monotonic() - started
    data = result.structured_content
    assert 15 <= elapsed < 40
    assert data["status"] == "partial"
    python = data["runners"]["python"]
    assert python["timed_out"] is True
    assert python["running_test"] == "tests/test_slow.py::test_hangs"
    assert data["counts"]["passed"] == 1
    assert python["error"]["message"].startswith("pytest timed out after 15s and was killed")
    heartbeats = [p for p in progress if p[2] and p[2].startswith("pytest: ")]
    assert len(heartbeats) >= 2
    assert [p[0] for p in progress] == sorted(p[0] for p in progress)
    # the server is still healthy afterwards
    again, _ = await call_tool("hanging", "list_profiles")
    assert again.structured_content["profiles"]["python"]["timeouts"]["tests"] == 15.0
