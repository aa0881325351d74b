"""A registry package as a per-client instance on the Docker runtime, through a running bridge.

``devops-paradise catalog add`` (PARADISE_RUNTIME=docker) builds the package's own image from the foundation
(images/package/Dockerfile: ``mcp-server-time`` from the real PyPI at a pinned version, behind the stdio
adapter), with the build's progress and nothing installed on the host. The bridge, already running, starts it
for a client registered afterwards; tools/list and tools/call go through the bridge. The container runs the
image as built (no registry at run time, on the client's network without NAT), its arguments filled for the
container, and answers nothing without the instance key.

The build is the Docker layer cache's: a re-run (CI's PARADISE_REBUILD_IMAGES=1 included) takes seconds
unless the adapter, bridge/catalog/packages.py, the Dockerfile or the foundation changed.
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
from tests.docker.conftest import docker_bridge, owned_workspace
from tests.helpers import ROOT, BridgeProcess, mcp_client

TIME = "pypi:mcp-server-time==2026.10.19"
CLIENT = "pkg-alice"

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
    with docker_bridge(engine, work, {CLIENT}) as proc:  # running before the package is added
        added = catalog_cli(proc.data_dir, "add", "time", TIME, "--arg=--local-timezone", "--arg=UTC")
        assert added.returncode == 0, added.stdout[-3000:] + added.stderr
        yield proc


@pytest.fixture(scope="module")
def client(bridge: BridgeProcess, work: Path) -> dict[str, Any]:
    workspace = owned_workspace(work / "alice", "Alice")
    made = bridge.register(CLIENT, workspace, ["time"], wait=120)
    state = bridge.wait_state(CLIENT, "time", {"running", "failed"}, timeout=120)
    assert state["state"] == "running", (state, state.get("last_log"))
    return made


def test_catalog_add_builds_the_package_image_and_installs_nothing_on_the_host(bridge, engine) -> None:
    package = Package.parse(TIME)
    image = engine.images.get(package.image_tag)
    assert image.labels["devops-paradise.package"] == TIME
    assert image.labels["devops-paradise.image"] == "package"
    assert not (bridge.data_dir / "packages").exists()  # the image holds the install, the host does not
    listed = catalog_cli(bridge.data_dir, "list")
    row = next(line for line in listed.stdout.splitlines() if line.startswith("time "))
    assert row.split()[-2:] == ["no", "yes"], row  # INSTALLED on the host: no; IMAGE: yes


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
