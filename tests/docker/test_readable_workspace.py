"""An unreadable workspace on Docker is reported, never served as empty: a real bridge, real Serena containers.

A root-owned 0700 workspace (what ``mktemp -d`` gives root) is refused before the container starts, with the
fix in ``last_error``; after ``chmod 755`` and a restart Serena finds the workspace's symbol. A Serena that
lists the workspace as empty while the host sees files fails its start ("sees an empty workspace")."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.runtime.base import InstanceSpec, RuntimeOperationError
from bridge.runtime.swarm import SwarmRuntime
from tests.docker.conftest import docker_bridge, owned_workspace
from tests.helpers import PYTHON, ROOT, BridgeProcess, free_block, mcp_client

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CLIENTS = {"dk-locked", "dk-blind"}
# A Serena whose ready check lists an empty directory of the workspace: what an instance that cannot see
# its workspace answers, made reproducible without defeating the access check that runs before it.
BLIND_CATALOG = """
[services.serena-blind]
image = "devops-paradise/serena:latest"
memory = "2g"
instance_key = true

[services.serena-blind.ready_check]
name = "search_for_pattern"
arguments = { substring_pattern = ".", relative_path = "empty" }
timeout = 60
"""


@pytest.fixture(scope="module")
def bridge(engine: Any, images: dict[str, str], work: Path) -> Iterator[BridgeProcess]:
    catalog = work / "catalog.toml"
    catalog.write_text(BLIND_CATALOG)
    with docker_bridge(engine, work, CLIENTS, PARADISE_CATALOG=str(catalog)) as proc:
        yield proc


def instance(bridge: BridgeProcess, client_id: str, service: str) -> dict[str, Any]:
    view = bridge.api("GET", f"/clients/{client_id}").json()
    return next(i for i in view["instances"] if i["service"] == service)


def cli_check(bridge: BridgeProcess, client_id: str, token: str) -> subprocess.CompletedProcess[str]:
    """``devops-paradise check`` as a user runs it, against this bridge."""
    env = {**os.environ, "PARADISE_URL": bridge.url, "PARADISE_ADMIN_TOKEN": bridge.admin_token,
           "DEVOPS_PARADISE_TOKEN": token, "PYTHONPATH": str(ROOT)}
    return subprocess.run([PYTHON, "-m", "bridge", "check", client_id, "--timeout", "60"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def settled(bridge: BridgeProcess, client_id: str, service: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = instance(bridge, client_id, service)
        if current["state"] in ("running", "failed"):
            return current
        time.sleep(1)
    raise AssertionError(f"{service} of {client_id} did not settle: {current}")


async def test_a_root_owned_0700_workspace_fails_with_the_fix_then_runs_once_readable(bridge, engine, work) -> None:
    workspace = owned_workspace(work / "locked", "Lockbox", owner=0)
    workspace.chmod(0o700)
    resp = bridge.api("POST", "/clients", params={"wait": 60},
                      json={"client_id": "dk-locked", "workspace": str(workspace), "services": ["serena"]})
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    failed = settled(bridge, "dk-locked", "serena")
    assert failed["state"] == "failed", failed
    assert f"uid 10001 and cannot read the workspace {workspace}" in failed["last_error"]
    assert f"chmod o+rx {workspace}" in failed["last_error"]
    assert "run the bridge as the workspace's owner" in failed["last_error"]
    # refused before the engine was asked: no container was made for it
    assert not engine.containers.list(all=True, filters={"name": "paradise-dk-locked-serena"})
    checked = cli_check(bridge, "dk-locked", token)
    assert checked.returncode != 0, checked.stdout
    assert "the instance has failed: the instance runs as uid 10001 and cannot read" in checked.stderr
    assert f"chmod o+rx {workspace}" in checked.stderr

    workspace.chmod(0o755)
    assert bridge.api("POST", "/clients/dk-locked/restart").status_code == 200
    running = settled(bridge, "dk-locked", "serena")
    assert running["state"] == "running", running
    async with mcp_client(bridge.mcp_url("dk-locked", "serena"), token) as client:
        found = await client.call_tool("find_symbol", {"name_path_pattern": "Lockbox"})
    assert [s["name_path"] for s in json.loads(found.content[0].text)] == ["Lockbox"]
    checked = cli_check(bridge, "dk-locked", token)
    assert checked.returncode == 0 and "initialize ok" in checked.stdout, checked.stdout + checked.stderr


def test_a_serena_that_lists_nothing_of_a_workspace_with_files_is_failed(bridge, work) -> None:
    workspace = owned_workspace(work / "blind", "Hidden")
    (workspace / "empty").mkdir()
    resp = bridge.api("POST", "/clients", params={"wait": 240},
                      json={"client_id": "dk-blind", "workspace": str(workspace), "services": ["serena-blind"]})
    assert resp.status_code == 201, resp.text
    failed = settled(bridge, "dk-blind", "serena-blind")
    assert failed["state"] == "failed", json.dumps(failed)
    assert failed["last_error"].startswith("the instance sees an empty workspace: search_for_pattern answered"), failed
    assert f"while {workspace} holds files on the host" in failed["last_error"]


async def test_the_swarm_runtime_refuses_the_same_workspace_before_it_asks_the_engine(engine, work) -> None:
    workspace = owned_workspace(work / "swarm-locked", "Sealed", owner=0)
    workspace.chmod(0o700)
    spec = InstanceSpec("sw-locked", "serena", free_block(1), workspace, work / "swarm-instance",
                        image="devops-paradise/serena:latest")
    with pytest.raises(RuntimeOperationError, match=f"uid 10001 and cannot read the workspace {workspace}"):
        await SwarmRuntime(stop_grace=2).start(spec)
    if (engine.info().get("Swarm") or {}).get("LocalNodeState") == "active":
        assert not engine.api.services(filters={"name": spec.name})
