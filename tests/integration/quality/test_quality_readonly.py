"""Where quality writes (issue 25.2, issue 28): a read-only workspace (bound read-only by bubblewrap, as a
process-runtime sandbox can) gets its reports, run history and caches in the instance's own state ($HOME),
every tool says where, and none answers internal_error; a writable workspace gets `.paradise/` with its
own .gitignore, so `git status` stays clean."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT, RunningServer, free_port, tool_caller, wait_ready
from quality_workspaces import commit_all, init_repo, write

PROJECT = {
    "calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    "pyproject.toml": '[project]\nname = "calc"\nversion = "1"\n\n[tool.pytest.ini_options]\npythonpath = ["."]\n',
}
QUICK = """
[profiles.quick]
tools = ["tests", "lint", "security", "changes"]
"""


def _start(name: str, workspace: Path, home: Path, logs: Path, profiles: Path, read_only: bool) -> RunningServer:
    bwrap = shutil.which("bwrap")
    if read_only and bwrap is None:
        pytest.fail("bubblewrap is required (the process runtime needs it too)")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE_"))}
    env |= {"HOME": str(home), "PARADISE_INSTANCE_EGRESS": "none"}
    server = [sys.executable, "-m", "instances.quality", "--port", str(port), "--workspace", str(workspace)]
    server += ["--profiles", str(profiles), "--profile", "quick"]
    prefix = [bwrap, "--dev-bind", "/", "/", "--ro-bind", str(workspace), str(workspace)] if read_only else []
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*prefix, *server], cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    return RunningServer(name, workspace, port, proc, log)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    import time

    base = tmp_path_factory.mktemp("where")
    profiles = write(base / "conf", {"profiles.toml": QUICK}) / "profiles.toml"
    started = {}
    for name, read_only in (("readonly", True), ("writable", False)):
        workspace = write(base / name, PROJECT)
        init_repo(workspace)
        commit_all(workspace, "base")
        home = base / f"{name}-home"
        home.mkdir()
        started[name] = _start(name, workspace, home, base, profiles, read_only)
    try:
        for server in started.values():
            wait_ready(server, time.monotonic() + 120)
        yield started
    finally:
        for server in started.values():
            server.proc.terminate()
            server.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def call(servers):
    caller = tool_caller(servers, read_timeout=300)

    async def run(name: str, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        result, _ = await caller(name, tool, args)
        return result.structured_content

    return run


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".git" not in p.parts)


async def test_a_read_only_workspace_gets_its_files_in_the_instance_state(call, servers) -> None:
    workspace = servers["readonly"].workspace
    home = workspace.parent / "readonly-home"
    before = _listing(workspace)
    tests = await call("readonly", "run_tests")
    assert tests["status"] == "ok" and tests["counts"]["passed"] == 1
    report = await call("readonly", "quality_report")
    assert report["status"] != "error", report.get("error")
    for path in report["files"].values():  # absolute: outside the workspace, in the instance's HOME
        assert Path(path).is_file() and Path(path).is_relative_to(home)
    assert Path(report["history"]).is_relative_to(home)
    trends = await call("readonly", "quality_trends")
    assert trends["available_runs"] == 1
    replies = [tests, report, trends]
    for tool in ("lint", "security_scan", "analyze_changes", "run_impacted_tests"):
        replies.append(await call("readonly", tool))
        assert (replies[-1].get("error") or {}).get("code") != "internal_error", (tool, replies[-1])
    for reply in replies:  # every tool says where its files are: the instance's state, not the workspace
        where = reply["files_dir"]
        assert where["in_workspace"] is False and Path(where["path"]).is_relative_to(home), (reply["tool"], where)
    assert _listing(workspace) == before  # nothing written into the workspace
    assert any(home.rglob("timings.json"))  # the run history went to the state too


async def test_a_writable_workspace_keeps_git_status_clean(call, servers) -> None:
    workspace = servers["writable"].workspace
    report = await call("writable", "quality_report")
    assert report["files"]["json"].startswith(".paradise/reports/")
    assert report["files_dir"] == {"path": ".paradise", "in_workspace": True}
    assert (workspace / ".paradise" / ".gitignore").is_file()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=workspace, capture_output=True, text=True)
    assert status.stdout == ""
