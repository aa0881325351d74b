"""Registry packages as per-client instances on the Docker runtime, through a running bridge.

``devops-paradise catalog add`` (PARADISE_RUNTIME=docker) builds each package's own image from the foundation
(images/package/Dockerfile, behind the stdio adapter): ``mcp-server-time`` and ``mcp-server-git`` from the real
PyPI, ``@modelcontextprotocol/server-filesystem`` and ``server-everything`` from the real npm registry, at
pinned versions, with the build's progress and nothing installed on the host. The bridge, already running,
starts them for clients registered afterwards; tools/list and tools/call go through the bridge. The container
runs the image as built (no registry at run time, on the client's network without NAT), its arguments filled
for the container (``{workspace}`` is /workspace), and answers nothing without the instance key; the
filesystem server reads its client's workspace and nothing of another client's, the git server logs its
client's repository, and server-everything's progress comes through.

The builds are the Docker layer cache's: a re-run (CI's PARADISE_REBUILD_IMAGES=1 included) takes seconds
unless the adapter, bridge/catalog/packages.py, the Dockerfile or the foundation changed. Cold, the npm image's
Node layer (Debian's npm, shared by every npm package image) takes minutes once per machine.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.catalog.packages import Package
from tests.docker.conftest import INSTANCE_UID, docker_bridge, owned_workspace
from tests.helpers import ROOT, BridgeProcess, mcp_client

TIME = "pypi:mcp-server-time==2026.10.19"
FILES = "npm:@modelcontextprotocol/server-filesystem@2026.8.31"
EVERYTHING = "npm:@modelcontextprotocol/server-everything@2026.8.31"
GIT = "pypi:mcp-server-git==2026.10.19"
ADDS = (("time", TIME, ["--arg=--local-timezone", "--arg=UTC"]), ("files", FILES, ["--arg={workspace}"]),
        ("everything", EVERYTHING, ["--arg=stdio"]), ("git", GIT, ["--arg=--repository", "--arg={workspace}"]))
CLIENT, OTHER = "pkg-alice", "pkg-bob"

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def catalog_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARADISE_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), "PARADISE_RUNTIME": "docker"}
    env.pop("PARADISE_CATALOG", None)
    return subprocess.run([sys.executable, "-m", "bridge", "catalog", *args], env=env, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)


def text_of(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


@pytest.fixture(scope="module")
def bridge(engine: Any, images: dict[str, str], work: Path) -> Iterator[BridgeProcess]:
    with docker_bridge(engine, work, {CLIENT, OTHER}) as proc:  # running before the packages are added
        for name, package, args in ADDS:
            added = catalog_cli(proc.data_dir, "add", name, package, *args)
            assert added.returncode == 0, added.stdout[-3000:] + added.stderr
            assert f"added service {name} ({package}, stdio)" in added.stdout, added.stdout[-3000:]
        yield proc


def registered(bridge: BridgeProcess, name: str, workspace: Path, services: list[str]) -> dict[str, Any]:
    (workspace / "secret.txt").write_text(f"{name}'s secret\n")
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "safe.directory=*"]
    subprocess.run([*git, "init", "-q"], cwd=workspace, check=True)
    subprocess.run([*git, "add", "."], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-q", "-m", f"{name}'s first commit"], cwd=workspace, check=True)
    subprocess.run(["chown", "-R", f"{INSTANCE_UID}:{INSTANCE_UID}", str(workspace)], check=True)
    made = bridge.register(name, workspace, services, wait=120)
    for service in services:
        state = bridge.wait_state(name, service, {"running", "failed"}, timeout=120)
        assert state["state"] == "running", (state, state.get("last_log"))
    return {**made, "path": workspace}


@pytest.fixture(scope="module")
def client(bridge: BridgeProcess, work: Path) -> dict[str, Any]:
    return registered(bridge, CLIENT, owned_workspace(work / "alice", "Alice"), [name for name, _, _ in ADDS])


@pytest.fixture(scope="module")
def other(bridge: BridgeProcess, work: Path) -> dict[str, Any]:
    return registered(bridge, OTHER, owned_workspace(work / "bob", "Bob"), ["files"])


def test_catalog_add_builds_the_package_images_and_installs_nothing_on_the_host(bridge, engine) -> None:
    listed = catalog_cli(bridge.data_dir, "list")
    for name, ref, _ in ADDS:
        image = engine.images.get(Package.parse(ref).image_tag)
        assert image.labels["devops-paradise.package"] == ref
        assert image.labels["devops-paradise.image"] == "package"
        row = next(line for line in listed.stdout.splitlines() if line.startswith(name + " "))
        assert row.split()[-2:] == ["no", "yes"], row  # INSTALLED on the host: no; IMAGE: yes
    assert not (bridge.data_dir / "packages").exists()  # the images hold the installs, the host does not


async def _time_tools(bridge: BridgeProcess, token: str) -> tuple[set[str], str]:
    async with mcp_client(bridge.mcp_url(CLIENT, "time"), token) as session:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        result = await session.call_tool("get_current_time", {"timezone": "Europe/Paris"})
    assert not result.is_error, text_of(result)
    return tools, text_of(result)


def test_tools_list_and_call_through_the_bridge(bridge, client) -> None:
    tools, answer = asyncio.run(_time_tools(bridge, client["token"]))
    assert {"get_current_time", "convert_time"} <= tools
    assert "Europe/Paris" in answer and "datetime" in answer, answer


def test_the_container_runs_the_built_image_offline_with_its_arguments(bridge, client, engine) -> None:
    container = engine.containers.get(f"paradise-{CLIENT}-time")
    assert container.attrs["Config"]["Image"] == Package.parse(TIME).image_tag
    assert container.attrs["HostConfig"]["ReadonlyRootfs"]
    network = engine.networks.get(next(iter(container.attrs["NetworkSettings"]["Networks"])))
    assert network.attrs["Options"].get("com.docker.network.bridge.enable_ip_masquerade") == "false"
    logs = container.logs().decode("utf-8", "replace")
    assert "mcp-server-time --local-timezone UTC) on http://0.0.0.0:8000/mcp" in logs, logs[-2000:]


def test_the_instance_refuses_a_request_without_its_key(bridge, client) -> None:
    port = bridge.state(CLIENT, "time")["port"]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    answer = httpx.post(f"http://127.0.0.1:{port}/mcp", json=body,
                        headers={"Accept": "application/json, text/event-stream"}, timeout=10)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "instance_key_missing", answer.text


async def _read(bridge: BridgeProcess, client: dict[str, Any], path: str) -> tuple[bool, str]:
    async with mcp_client(bridge.mcp_url(client["client_id"], "files"), client["token"]) as session:
        result = await session.call_tool("read_text_file", {"path": path})
    return bool(result.is_error), text_of(result)


def test_the_filesystem_server_reads_its_own_workspace_and_not_another(bridge, client, other) -> None:
    failed, text = asyncio.run(_read(bridge, client, "/workspace/secret.txt"))
    assert not failed and text == "pkg-alice's secret\n", text
    failed, text = asyncio.run(_read(bridge, other, "/workspace/secret.txt"))
    assert not failed and text == "pkg-bob's secret\n", text
    failed, text = asyncio.run(_read(bridge, client, str(other["path"] / "secret.txt")))
    assert failed and "pkg-bob's secret" not in text, text


async def _everything_and_git(bridge: BridgeProcess, client: dict[str, Any]) -> tuple[list[float], str]:
    steps: list[float] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        steps.append(done)

    async with mcp_client(bridge.mcp_url(CLIENT, "everything"), client["token"]) as session:
        result = await session.call_tool("trigger-long-running-operation", {"duration": 1, "steps": 3},
                                         progress_callback=progress)
        assert not result.is_error, text_of(result)
    async with mcp_client(bridge.mcp_url(CLIENT, "git"), client["token"]) as session:
        log = await session.call_tool("git_log", {"repo_path": "/workspace"})
        assert not log.is_error, text_of(log)
    return steps, text_of(log)


def test_server_everything_progress_and_mcp_server_git_on_the_clients_repository(bridge, client) -> None:
    steps, log = asyncio.run(_everything_and_git(bridge, client))
    assert steps == [1, 2, 3], steps
    assert "pkg-alice's first commit" in log, log
