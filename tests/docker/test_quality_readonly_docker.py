"""Issue 25.2 on a real Docker engine: a root-owned 0755 workspace (a server or CI job running as root) is
readable by the quality container, which rightly does not run as root, and not writable. Every tool works
or says why, none answers internal_error or fails on a permission problem, every tool's files go to the
instance's state volume (/state) and its reply says so, and nothing is written into the workspace.
A real bridge on the Docker runtime, the quality image, the official MCP SDK client."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docker.conftest import remove_managed
from tests.helpers import BridgeProcess, mcp_client, serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "quality"))
from quality_workspaces import commit_all, init_repo, write
from web_workspace import webapp

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CLIENT = "dq-rootws"
APP_PORT = 18766  # inside the container's own network namespace
PROJECT = {
    **{k: v for k, v in webapp(APP_PORT).items() if k not in ("profiles.toml", "app-port.txt")},
    "calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    "pyproject.toml": '[project]\nname = "calc"\nversion = "1"\n\n[tool.pytest.ini_options]\npythonpath = ["."]\n',
}
APP = {"start_command": f"node server.js {APP_PORT}", "wait_url": f"http://127.0.0.1:{APP_PORT}/"}
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("list_profiles", {}),
    ("run_tests", {"coverage": True}),
    ("lint", {}),
    ("security_scan", {}),
    ("analyze_changes", {}),
    ("run_impacted_tests", {}),
    ("quality_report", {"profile": "quick"}),
    ("quality_trends", {}),
    ("run_e2e", APP),
    ("run_api_tests", {"environment": "local.postman_environment.json", **APP}),
    ("run_performance", {"url": f"http://127.0.0.1:{APP_PORT}/", "start_command": APP["start_command"]}),
]


def _listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if ".git" not in p.parts}


@pytest.fixture(scope="module")
def workspace(work: Path) -> Path:
    root = write(work / "rootws", PROJECT)
    init_repo(root)
    commit_all(root, "base")
    (root / "calc.py").write_text("def add(a, b):\n    return b + a\n", encoding="utf-8")  # a change to analyze
    for path in [root, *root.rglob("*")]:
        os.chown(path, 0, 0)
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.fixture(scope="module")
def replies(engine: Any, images: dict[str, str], work: Path, workspace: Path) -> Iterator[dict[str, Any]]:
    if os.geteuid() != 0:
        pytest.fail("this test makes a root-owned workspace: run it as root (CI does)")
    remove_managed(engine, {CLIENT})
    env = {"PARADISE_RUNTIME": "docker", "PARADISE_READY_TIMEOUT": "180", "PARADISE_WORKSPACE_ROOTS": str(work)}
    proc = BridgeProcess(work / "data", env=env)
    before = _listing(workspace)
    try:
        with serving(proc):
            token = proc.register(CLIENT, workspace, ["quality"], wait=150)["token"]
            yield {"before": before, **_call_every_tool(proc, token)}
    finally:
        remove_managed(engine, {CLIENT})


def _call_every_tool(proc: BridgeProcess, token: str) -> dict[str, Any]:
    import anyio

    async def run() -> dict[str, Any]:
        found = {}
        async with mcp_client(proc.mcp_url(CLIENT, "quality"), token, read_timeout=240) as client:
            for tool, args in CALLS:
                found[tool] = (await client.call_tool(tool, args)).structured_content
        return found

    return anyio.run(run)


def test_every_tool_works_or_says_why_and_none_fails_on_a_permission(replies: dict[str, Any]) -> None:
    for tool, _ in CALLS:
        error = replies[tool].get("error") or {}
        assert error.get("code") not in ("internal_error", "not_writable"), (tool, error)
        assert "Permission denied" not in str(replies[tool]), tool
    assert replies["run_tests"]["counts"]["passed"] == 2  # pytest and jest both ran
    assert replies["run_e2e"]["counts"] == {"total": 2, "passed": 1, "failed": 1, "skipped": 0, "errors": 0}
    assert replies["run_api_tests"]["counts"]["total"] == 3
    assert replies["run_performance"]["status"] == "ok", replies["run_performance"].get("error")
    assert replies["quality_trends"]["available_runs"] == 1


def test_every_file_goes_to_the_state_volume_and_the_reply_says_so(replies: dict[str, Any], workspace: Path) -> None:
    for tool, _ in CALLS[1:]:
        where = replies[tool]["files_dir"]
        assert where["in_workspace"] is False and where["path"].startswith("/state/"), (tool, where)
    assert all(path.startswith("/state/") for path in replies["quality_report"]["files"].values())
    assert all(path.startswith("/state/") for path in replies["run_performance"]["files"].values())
    artifacts = [a["path"] for f in replies["run_e2e"]["failures"] for a in f["artifacts"]]
    assert artifacts and all(path.startswith("/state/") for path in artifacts)
    assert _listing(workspace) == replies["before"]  # nothing written into the workspace
