"""Issue 14's last "done when", on a real Docker engine: one mixed repository (pytest + jest, an eslint and a
prettier finding, a Newman collection), a real bridge on the Docker runtime, the quality service only,
the official MCP SDK client. Every call runs the real tool inside devops-paradise/quality on a client
network with no egress (proven from the network's own settings, not assumed); a JS change selects
exactly its test file and an unmappable change runs tests instead of none."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.runtime.engine import network_name
from tests.docker.conftest import INSTANCE_UID, remove_managed
from tests.helpers import BridgeProcess, mcp_client, serving

# The sample-workspace writers of the quality integration tests import each other as top-level modules
# (their conftest directory is on sys.path there); reuse them as they are rather than copying them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "quality"))
from js_workspaces import JEST, LINT, MIXED
from quality_workspaces import make_git_workspace
from web_workspace import webapp

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CLIENT = "dq-mixed"
APP_PORT = 18765  # inside the container's own network namespace: its loopback, nothing else listens there
PYTHON_PART = {k: v for k, v in MIXED.items() if k.startswith(("tools/", "tests/"))}
WEB_PART = {k: v for k, v in webapp(APP_PORT).items() if k.endswith((".js", ".json")) and "/" not in k}
MIXED_REPO = {
    **JEST,  # root package.json (jest): __tests__/cart.test.js fails, __tests__/pricing.test.js passes
    **PYTHON_PART,  # tools/slug.py and tests/test_slug.py (pytest, passes)
    "src/app.js": LINT["src/app.js"],  # eslint: an unused variable and an undefined name
    "src/typed.ts": LINT["src/typed.ts"],  # prettier: a missing semicolon
    "server.js": WEB_PART["server.js"],  # the API Newman checks, started inside the container
    "shop.postman_collection.json": WEB_PART["shop.postman_collection.json"],
    "local.postman_environment.json": WEB_PART["local.postman_environment.json"],
    "data/rates.json": '{"vat": 20}\n',  # a file no import graph reaches
    ".gitignore": ".paradise/\ncoverage/\n.pytest_cache/\n__pycache__/\n",
}


def chown_tree(root: Path) -> None:
    """The container runs as the workspace's owner: give the whole tree (.git too) to the image's user."""
    for path in [root, *root.rglob("*")]:
        os.chown(path, INSTANCE_UID, INSTANCE_UID)


def rewrite(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.write_text(text, encoding="utf-8")
    os.chown(path, INSTANCE_UID, INSTANCE_UID)


@pytest.fixture(scope="module")
def repo(work: Path) -> Path:
    root = make_git_workspace(work / "mixed", MIXED_REPO, {})  # committed: the base of analyze_changes
    chown_tree(root)
    return root


@pytest.fixture(scope="module")
def bridge(engine: Any, images: dict[str, str], work: Path) -> Iterator[BridgeProcess]:
    remove_managed(engine, {CLIENT})
    proc = BridgeProcess(
        work / "data",
        env={
            "PARADISE_RUNTIME": "docker",
            "PARADISE_READY_TIMEOUT": "180",
            "PARADISE_START_TIMEOUT": "120",
            "PARADISE_PROBE_INTERVAL": "0.5",
            "PARADISE_WORKSPACE_ROOTS": str(work),
        },
    )
    proc.env.pop("PARADISE_INSTANCE_EGRESS", None)  # the default policy is the one under test
    with serving(proc):
        assert httpx.get(proc.url + "/healthz").json()["runtime"] == "docker"
        yield proc
    remove_managed(engine, {CLIENT})


@pytest.fixture(scope="module")
def token(bridge: BridgeProcess, repo: Path) -> str:
    return bridge.register(CLIENT, repo, ["quality"], wait=150)["token"]


async def call(bridge: BridgeProcess, token: str, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    async with mcp_client(bridge.mcp_url(CLIENT, "quality"), token, read_timeout=150) as client:
        result = await client.call_tool(tool, args or {})
    assert not result.is_error, result
    return result.structured_content


def test_the_client_network_has_no_egress(engine: Any, token: str) -> None:
    """No NAT on the client's only network: nothing beyond the host answers (docs/security.md explains why
    it is not an ``internal`` network: the engine would not publish the instance's port on 127.0.0.1)."""
    container = engine.containers.get(f"paradise-{CLIENT}-quality")
    networks = container.attrs["NetworkSettings"]["Networks"]
    assert set(networks) == {network_name(CLIENT)}
    attrs = engine.networks.get(network_name(CLIENT)).attrs
    assert attrs["Internal"] is False  # deliberately; egress is cut by the option below instead
    assert attrs["Options"].get("com.docker.network.bridge.enable_ip_masquerade") == "false"
    assert attrs["Labels"].get("devops-paradise.egress") == "none"
    # and from inside: an address outside the host gets no answer (TEST-NET-3, port 80, 3 s bound)
    probe = "import socket; s = socket.socket(); s.settimeout(3); print(s.connect_ex(('203.0.113.1', 80)))"
    code, output = container.exec_run(["python3", "-c", probe])
    assert code == 0 and output.decode().strip() != "0", output


async def test_run_tests_merges_pytest_and_jest_with_the_failure_located(bridge, token: str) -> None:
    data = await call(bridge, token, "run_tests", {"coverage": False})
    assert set(data["runners"]) == {"python", "jest"}, data["runners"]
    jest = data["runners"]["jest"]  # the image's own jest, the workspace has no node_modules
    assert jest["executable"].startswith("/opt/quality-node/") and jest["version"].startswith("30.")
    assert data["runners"]["python"]["interpreter"]["path"] == "/opt/venv/bin/python"
    assert data["counts"] == {"total": 4, "passed": 3, "failed": 1, "skipped": 0, "errors": 0}
    [failure] = data["failures"]
    assert (failure["runner"], failure["file"], failure["line"]) == ("jest", "__tests__/cart.test.js", 8)
    assert "Expected: 8" in failure["message"]


async def test_lint_reports_real_eslint_and_prettier_findings(bridge, token: str) -> None:
    data = await call(bridge, token, "lint")
    by_tool = {(f["tool"], f["file"], f["rule"]) for f in data["findings"]}
    assert ("eslint", "src/app.js", "no-undef") in by_tool, by_tool
    assert any(tool == "prettier" and file == "src/typed.ts" for tool, file, _ in by_tool), by_tool
    assert data["counts"]["by_tool"]["eslint"] >= 2 and data["counts"]["by_tool"]["prettier"] >= 1
    linters = data["linters"]
    assert linters["eslint"]["config"].startswith("default (")  # the image's flat config: the repo has none
    assert linters["eslint"]["version"] and linters["prettier"]["version"]


async def test_a_js_change_selects_exactly_its_test_file(bridge, token: str, repo: Path) -> None:
    original = (repo / "src/pricing.js").read_text(encoding="utf-8")
    rewrite(repo, "src/pricing.js", original.replace("x * 2", "x * 3"))
    try:
        data = await call(bridge, token, "analyze_changes")
    finally:
        rewrite(repo, "src/pricing.js", original)
    assert [f["path"] for f in data["changed_files"]] == ["src/pricing.js"]
    # pricing.js is imported by its own test and, through cart.js, by the cart test; unused() is reached by both
    assert sorted((t["path"], tuple(t["chain"])) for t in data["impacted_tests"]) == [
        ("__tests__/cart.test.js", ("__tests__/cart.test.js", "src/cart.js", "src/pricing.js")),
        ("__tests__/pricing.test.js", ("__tests__/pricing.test.js", "src/pricing.js")),
    ]
    assert data["full_suite_required"] is False


async def test_a_leaf_module_change_selects_only_the_test_that_imports_it(bridge, token: str, repo: Path) -> None:
    original = (repo / "src/cart.js").read_text(encoding="utf-8")
    rewrite(repo, "src/cart.js", original.replace("(a, b) => a + b", "(sum, price) => sum + price"))
    try:
        data = await call(bridge, token, "analyze_changes")
        run = await call(bridge, token, "run_impacted_tests", {"coverage": False})
    finally:
        rewrite(repo, "src/cart.js", original)
    assert [t["path"] for t in data["impacted_tests"]] == ["__tests__/cart.test.js"]
    assert run["mode"] == "impacted"
    assert [t["path"] for t in run["selected_tests"]] == ["__tests__/cart.test.js"]
    assert run["counts"] == {"total": 2, "passed": 1, "failed": 1, "skipped": 0, "errors": 0}


async def test_an_unmappable_change_runs_tests_instead_of_none(bridge, token: str, repo: Path) -> None:
    original = (repo / "data/rates.json").read_text(encoding="utf-8")
    rewrite(repo, "data/rates.json", '{"vat": 21}\n')
    try:
        data = await call(bridge, token, "analyze_changes")
        run = await call(bridge, token, "run_impacted_tests", {"coverage": False})
    finally:
        rewrite(repo, "data/rates.json", original)
    assert data["full_suite_required"] is True
    assert any("data/rates.json" in reason for reason in data["fallback_reasons"]), data["fallback_reasons"]
    assert run["mode"] == "full" and run["selected_tests"] == []
    assert [(e["runner"], e["mode"]) for e in run["by_runner"]] == [("pytest", "full"), ("jest", "full")]
    assert run["counts"] == {"total": 4, "passed": 3, "failed": 1, "skipped": 0, "errors": 0}  # all, not none


async def test_newman_checks_an_api_started_inside_the_container(bridge, token: str) -> None:
    args = {
        "collection": "shop.postman_collection.json",
        "environment": "local.postman_environment.json",
        "start_command": f"node server.js {APP_PORT}",
        "wait_url": f"http://127.0.0.1:{APP_PORT}/api/items",
    }
    data = await call(bridge, token, "run_api_tests", args)
    assert data["counts"] == {"total": 3, "passed": 2, "failed": 1, "skipped": 0, "errors": 0}
    requests = {r["name"]: r for r in data["requests"]}
    assert requests["list items"]["status_code"] == 200
    [failure] = data["failures"]
    assert failure["test"] == "shop.postman_collection.json::home page::is json"
    assert data["version"] and data["app"]["start_command"] == ["node", "server.js", str(APP_PORT)]
