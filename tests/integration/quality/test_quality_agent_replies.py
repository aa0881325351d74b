"""Every tool's default reply fits an agent (text + structured content under 40 KB) on a generated
project of several hundred tests with many failures and findings, through the real server and the
real MCP client; the text carries the facts; `page` and `detail` reach the rest."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, start_server, wait_ready
from generated_suite import commit_all, write_suite
from mcp import Client

BUDGET = 40_000
FAILING_MODULES = 10  # 4 functions x 1 failing case each: 40 failing tests


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Path, int]]:
    root = tmp_path_factory.mktemp("agent-ws")
    total = write_suite(root, modules=40, failing_modules=FAILING_MODULES)
    commit_all(root, "generated project")
    module = root / "pkg" / "mod_25.py"  # a regression in f1 of a module whose tests all passed
    module.write_text(module.read_text().replace("return x * 3 + 25", "return x * 3 + 26"), encoding="utf-8")
    server = start_server("agent", root, tmp_path_factory.mktemp("agent-logs"))
    try:
        wait_ready(server, time.monotonic() + 60)
        yield server, root, total
    finally:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()


async def call(server: RunningServer, tool: str, args: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    async with Client(server.url, read_timeout_seconds=600) as client:
        result = await client.call_tool(tool, args or {})
    return result.content[0].text, result.structured_content


def reply_bytes(text: str, data: dict[str, Any]) -> int:
    return len(text.encode("utf-8")) + len(json.dumps(data, separators=(",", ":")).encode("utf-8"))


async def test_every_tool_answers_under_40_kb_with_the_facts(agent_server) -> None:
    server, _root, total = agent_server
    sizes: dict[str, int] = {}

    text, data = await call(server, "run_tests")
    sizes["run_tests"] = reply_bytes(text, data)
    assert data["counts"]["total"] == total and data["counts"]["failed"] == 4 * FAILING_MODULES + 3
    assert len(data["failures"]) < data["counts"]["failed"]  # shortened ...
    cut = {m["path"]: m for m in data["more"]}
    assert cut["failures"]["total"] == 4 * FAILING_MODULES + 3  # ... and says how much is left
    first = data["failures"][0]
    assert f"{first['file']}:{first['line']}" in text  # the text has the failure itself
    assert first["message"].splitlines()[0][:200] in text
    plan = data["runners"]["python"]["plan"]
    assert plan["mode"] == "parallel" or "busy" in plan["reason"], plan  # serial only on a busy machine
    assert f"Plan: {plan['mode']}" in text

    text, data = await call(server, "lint")
    sizes["lint"] = reply_bytes(text, data)
    assert data["counts"]["total"] >= 200 and len(data["findings"]) < data["counts"]["total"]
    assert f"{data['findings'][0]['file']}:{data['findings'][0]['line']}" in text

    text, data = await call(server, "security_scan", {"include_dependencies": False})
    sizes["security_scan"] = reply_bytes(text, data)
    assert data["counts"]["total"] >= 200 and "B101" in text

    text, data = await call(server, "analyze_changes")
    sizes["analyze_changes"] = reply_bytes(text, data)
    assert data["import_graph"]["edges"] == [] and data["import_graph"]["edge_count"] > 40
    assert "tests/test_mod_25.py" in text and data["risk"]["files"][0]["path"] == "pkg/mod_25.py"

    text, data = await call(server, "run_impacted_tests")
    sizes["run_impacted_tests"] = reply_bytes(text, data)
    assert data["mode"] == "impacted" and data["counts"]["failed"] == 3
    assert "Selected tests" in text and "tests/test_mod_25.py" in text

    text, data = await call(server, "quality_report")
    sizes["quality_report"] = reply_bytes(text, data)
    assert data["files"]["html"].endswith(".html") and data["files"]["html"] in text
    assert data["metrics"]["tests"]["failed"] == 4 * FAILING_MODULES + 3

    await call(server, "quality_report", {"profile": "quick"})
    text, data = await call(server, "quality_trends")
    sizes["quality_trends"] = reply_bytes(text, data)
    assert data["risk_backtest"]["recorded_runs"] >= 3 and "Risk backtest" in text

    text, data = await call(server, "list_profiles")
    sizes["list_profiles"] = reply_bytes(text, data)
    assert all(size < BUDGET for size in sizes.values()), sizes


async def test_pages_and_full_detail_reach_everything(agent_server) -> None:
    server, _root, _total = agent_server
    _, first = await call(server, "lint")
    _, second = await call(server, "lint", {"page": 2})
    assert second["reply"]["page"] == 2
    first_keys = {(f["file"], f["line"], f["rule"]) for f in first["findings"]}
    second_keys = {(f["file"], f["line"], f["rule"]) for f in second["findings"]}
    assert second_keys and not first_keys & second_keys
    text, full = await call(server, "lint", {"detail": "full"})
    assert len(full["findings"]) == full["counts"]["total"]  # everything, at the price of size
    assert reply_bytes(text, full) > BUDGET
    _, edges = await call(server, "analyze_changes", {"include_edges": True})
    assert len(edges["import_graph"]["edges"]) == edges["import_graph"]["edge_count"]
    _, bad = await call(server, "lint", {"detail": "everything"})
    assert bad["status"] == "error" and bad["error"]["code"] == "bad_argument"
