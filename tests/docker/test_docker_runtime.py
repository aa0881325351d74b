"""The Docker runtime on a real engine: per-client containers through a real bridge, real Serena included."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from bridge.runtime.base import InstanceSpec
from bridge.runtime.docker import DockerRuntime
from tests.docker.conftest import INSTANCE_UID, owned_workspace
from tests.docker.conftest import docker_bridge as start_docker_bridge
from tests.helpers import BridgeProcess, free_block, mcp_client

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CLIENTS = {"dk-ann", "dk-ben", "dk-cy", "dk-kill", "dk-adopt", "dk-gone", "dk-move", "dk-safe", "dk-open"}


workspace = owned_workspace


@pytest.fixture(scope="module")
def docker_bridge(engine: Any, images: dict[str, str], work: Path) -> Iterator[BridgeProcess]:
    with start_docker_bridge(engine, work, CLIENTS) as proc:
        yield proc


def container_of(engine: Any, client_id: str, service: str) -> Any:
    return engine.containers.get(f"paradise-{client_id}-{service}")


def managed_objects(engine: Any, client_id: str) -> list[str]:
    label = {"label": [f"devops-paradise.client={client_id}"]}
    return (
        [c.name for c in engine.containers.list(all=True, filters=label)]
        + [v.name for v in engine.volumes.list(filters=label)]
        + [n.name for n in engine.networks.list(filters=label)]
    )


async def test_three_clients_get_their_own_serena_containers(docker_bridge: BridgeProcess, engine, work) -> None:
    names = {"dk-ann": "Anchor", "dk-ben": "Bucket", "dk-cy": "Compass"}
    spaces = {name: workspace(work / name, cls) for name, cls in names.items()}

    async def register(name: str) -> dict:
        async with httpx.AsyncClient(
            base_url=docker_bridge.url, headers={"Authorization": f"Bearer {docker_bridge.admin_token}"}, timeout=300
        ) as http:
            body = {"client_id": name, "workspace": str(spaces[name]), "services": ["serena"]}
            resp = await http.post("/api/v1/clients", params={"wait": 240}, json=body)
            assert resp.status_code == 201, resp.text
            return resp.json()

    created = dict(zip(names, await asyncio.gather(*(register(n) for n in names)), strict=True))
    for name, cls in names.items():
        assert created[name]["instances"][0]["state"] == "running", created[name]
        async with mcp_client(docker_bridge.mcp_url(name, "serena"), created[name]["token"]) as client:
            found = await client.call_tool("find_symbol", {"name_path_pattern": cls})
            others = await client.call_tool("find_symbol", {"name_path_pattern": names["dk-ann"]})
        assert [s["name_path"] for s in json.loads(found.content[0].text)] == [cls]
        assert (json.loads(others.content[0].text) == []) == (name != "dk-ann")
        container = container_of(engine, name, "serena")
        labels = container.labels
        assert labels["devops-paradise.managed"] == "true" and labels["devops-paradise.client"] == name
        bindings = container.attrs["HostConfig"]["PortBindings"]["8000/tcp"]
        assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
        assert int(bindings[0]["HostPort"]) == created[name]["instances"][0]["port"]
        host_config = container.attrs["HostConfig"]
        assert host_config["CapDrop"] == ["ALL"] and "no-new-privileges:true" in host_config["SecurityOpt"]
        assert host_config["Memory"] == 2 * 1024**3
        assert container.attrs["Config"]["User"] == f"{INSTANCE_UID}:{INSTANCE_UID}"
    # One network per client: ann's container cannot reach ben's.
    ben = container_of(engine, "dk-ben", "serena")
    ben_ip = ben.attrs["NetworkSettings"]["Networks"]["paradise-dk-ben"]["IPAddress"]
    probe = f"import socket; socket.create_connection(('{ben_ip}', 8000), timeout=3); print('reached')"
    result = container_of(engine, "dk-ann", "serena").exec_run(["/opt/venv/bin/python", "-c", probe])
    assert result.exit_code != 0 and b"reached" not in result.output
    # Within a client's own network the same probe works, so the failure above is isolation, not a broken probe.
    own = ben.exec_run(["/opt/venv/bin/python", "-c", probe])
    assert own.exit_code == 0 and b"reached" in own.output


async def test_docker_kill_is_noticed_and_healed(docker_bridge: BridgeProcess, engine, work) -> None:
    created = docker_bridge.register("dk-kill", workspace(work / "kill", "Phoenix"), ["quality"], wait=120)
    first = container_of(engine, "dk-kill", "quality").id
    engine.containers.get(first).kill()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = docker_bridge.state("dk-kill", "quality")
        with contextlib.suppress(Exception):
            if state["state"] == "running" and container_of(engine, "dk-kill", "quality").id != first:
                break
        time.sleep(0.5)
    assert state["state"] == "running" and state["restarts"] == 1
    async with mcp_client(docker_bridge.mcp_url("dk-kill", "quality"), created["token"]) as client:
        profiles = await client.call_tool("list_profiles", {})
    assert not profiles.is_error


async def test_bridge_kill9_adopts_containers_and_sessions_survive(docker_bridge: BridgeProcess, engine, work) -> None:
    created = docker_bridge.register("dk-adopt", workspace(work / "adopt", "Keeper"), ["quality"], wait=120)
    container_id = container_of(engine, "dk-adopt", "quality").id
    async with mcp_client(docker_bridge.mcp_url("dk-adopt", "quality"), created["token"]) as client:
        assert not (await client.call_tool("list_profiles", {})).is_error
        docker_bridge.kill(signal.SIGKILL)
        assert container_of(engine, "dk-adopt", "quality").status == "running"
        docker_bridge.start()
        again = await client.call_tool("list_profiles", {})  # the same MCP session, no re-initialize
    assert not again.is_error
    assert container_of(engine, "dk-adopt", "quality").id == container_id
    events = docker_bridge.api("GET", "/events", params={"limit": 50}).json()
    reconcile = next(e for e in events if e["kind"] == "bridge.reconcile")
    assert "dk-adopt/quality" in reconcile["message"] and "on docker" in reconcile["message"]


def test_delete_leaves_no_container_network_or_volume(docker_bridge: BridgeProcess, engine, work) -> None:
    docker_bridge.register("dk-gone", workspace(work / "gone", "Ghost"), ["quality"], wait=120)
    assert len(managed_objects(engine, "dk-gone")) == 3  # container, state volume, network
    assert docker_bridge.api("DELETE", "/clients/dk-gone").status_code == 204
    assert managed_objects(engine, "dk-gone") == []
    assert docker_bridge.api("DELETE", "/clients/dk-gone").status_code == 204  # idempotent


async def test_discover_ignores_containers_it_does_not_manage(docker_services, docker_ip, images) -> None:
    """A throwaway MCP server from compose/test-fixtures.yml (pytest-docker): reachable, and never ours."""
    port = docker_services.port_for("mcp-fixture", 8000)
    url = f"http://127.0.0.1:{port}/mcp"

    def answers() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        return False

    docker_services.wait_until_responsive(check=answers, timeout=60, pause=0.5)
    async with Client(url) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
    assert {"run_tests", "lint", "security_scan"} <= tools
    runtime = DockerRuntime()
    try:
        found = await runtime.discover()
    finally:
        await runtime.close()
    assert all(d.port != port for d in found)


def test_a_port_taken_meanwhile_is_released_and_the_next_leased(docker_bridge: BridgeProcess, engine, work) -> None:
    import socket

    created = docker_bridge.register("dk-move", workspace(work / "move", "Mover"), ["quality"], wait=120)
    old_port = created["instances"][0]["port"]
    docker_bridge.kill(signal.SIGKILL)
    container_of(engine, "dk-move", "quality").remove(force=True)
    with socket.create_server(("127.0.0.1", old_port)):  # another program takes the port meanwhile
        docker_bridge.start()
        state = docker_bridge.wait_state("dk-move", "quality", {"running", "failed"}, timeout=120)
        assert state["state"] == "running" and state["port"] != old_port
        leases = [p["port"] for p in docker_bridge.api("GET", "/ports").json() if p["client_id"] == "dk-move"]
        assert leases == [state["port"]]
        bindings = container_of(engine, "dk-move", "quality").attrs["HostConfig"]["PortBindings"]["8000/tcp"]
        assert int(bindings[0]["HostPort"]) == state["port"]
    kinds = [e["kind"] for e in docker_bridge.api("GET", "/events", params={"client_id": "dk-move"}).json()]
    assert "port.moved" in kinds
    docker_bridge.api("DELETE", "/clients/dk-move")


# ---- secure defaults of the runtime itself (no bridge): CPU limit, read-only root, egress policy -----------

MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
WRITES = (
    "import os, sys\n"
    "for path in ('/opt/venv/x', '/etc/x', '/tmp/x', os.environ['HOME'] + '/x', '/state/x', '/workspace/x'):\n"
    "    try:\n        open(path, 'w').close(); print(path, 'ok')\n"
    "    except OSError as exc:\n        print(path, type(exc).__name__)\n"
)


async def answers_mcp(port: int) -> set[str]:
    deadline = time.monotonic() + 60
    while True:
        try:
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                return {tool.name for tool in (await client.list_tools()).tools}
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def quality_spec(work: Path, client_id: str, cpus: float | None = None) -> InstanceSpec:
    root = owned_workspace(work / client_id, "Safe")
    return InstanceSpec(
        client_id=client_id,
        service="quality",
        port=free_block(1),
        workspace=root,
        instance_dir=work / "instances" / client_id,
        image="devops-paradise/quality:latest",
        memory_bytes=512 * 1024**2,
        cpus=cpus,
    )


async def test_containers_get_a_cpu_limit_a_read_only_root_and_no_egress(engine, images, work) -> None:
    runtime = DockerRuntime(default_cpus=1.0, egress="none")
    spec = quality_spec(work, "dk-safe")
    try:
        state = await runtime.start(spec)
        assert {"run_tests", "lint"} <= await answers_mcp(spec.port)  # it serves on the read-only root
        container = engine.containers.get(state["container_id"])
        host = container.attrs["HostConfig"]
        assert host["NanoCpus"] == 1_000_000_000 and host["ReadonlyRootfs"] is True
        assert set(host["Tmpfs"]) == {"/tmp", "/home/paradise"}
        assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "8m", "max-file": "2"}}  # bounded
        result = container.exec_run(["/opt/venv/bin/python", "-c", WRITES])
        written = dict(line.rsplit(" ", 1) for line in result.output.decode().splitlines())
        assert written["/opt/venv/x"] == written["/etc/x"] == "OSError"  # EROFS
        assert written["/tmp/x"] == written["/home/paradise/x"] == written["/state/x"] == "ok"
        assert written["/workspace/x"] == "ok"
        network = engine.networks.get("paradise-dk-safe")
        assert network.attrs["Options"].get(MASQUERADE) == "false"  # no NAT: nothing beyond the host answers
        assert network.attrs["Labels"]["devops-paradise.egress"] == "none"
    finally:
        await runtime.remove("dk-safe", "quality", locals().get("state", {}))
        await runtime.close()
    assert not engine.networks.list(names=["paradise-dk-safe"])


async def test_the_catalog_cpu_limit_wins_and_egress_all_is_the_engines_nat(engine, images, work) -> None:
    runtime = DockerRuntime(default_cpus=1.0, egress="all")
    spec = quality_spec(work, "dk-open", cpus=0.5)
    try:
        state = await runtime.start(spec)
        container = engine.containers.get(state["container_id"])
        assert container.attrs["HostConfig"]["NanoCpus"] == 500_000_000
        network = engine.networks.get("paradise-dk-open")
        assert MASQUERADE not in (network.attrs.get("Options") or {})
        assert network.attrs["Labels"]["devops-paradise.egress"] == "all"
        assert [d.port for d in await runtime.discover() if d.client_id == "dk-open"] == [spec.port]  # labels
    finally:
        await runtime.remove("dk-open", "quality", locals().get("state", {}))
        await runtime.close()
