"""The Swarm runtime on a real engine: a single-node Swarm (initialised here when the engine is in none, and
left as found), services per (client, service), reached through a real bridge with the MCP SDK client."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from bridge.runtime.base import InstanceSpec
from bridge.runtime.swarm import LIVE, SwarmRuntime
from bridge.runtime.swarm_spec import build_service, health_check, routing_mesh_available
from tests.docker.conftest import INSTANCE_UID, owned_workspace, remove_managed, unavailable
from tests.helpers import BridgeProcess, free_block, mcp_client

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CLIENTS = {"sw-unit", "sw-place", "sw-mesh", "sw-idle", "sw-ann", "sw-kill", "sw-gone", "sw-adopt"}

MANAGED = "devops-paradise.managed=true"


workspace = owned_workspace


def remove_swarm_managed(engine: Any, clients: set[str]) -> None:
    """Services of these test clients, then (once their containers are gone) volumes and networks."""
    for service in engine.api.services(filters={"label": MANAGED}):
        if (service["Spec"].get("Labels") or {}).get("devops-paradise.client") in clients:
            with contextlib.suppress(docker.errors.APIError):
                engine.api.remove_service(service["ID"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
        c.labels.get("devops-paradise.client") in clients
        for c in engine.containers.list(all=True, filters={"label": MANAGED})
    ):
        time.sleep(0.3)
    for _ in range(20):  # overlay attachments linger for a moment after the containers
        remove_managed(engine, clients)
        if not managed_objects(engine, clients):
            return
        time.sleep(0.5)


def managed_objects(engine: Any, clients: set[str]) -> list[str]:
    """Every service, container, volume and network labelled for these clients."""

    def ours(labels: dict[str, str] | None) -> bool:
        return (labels or {}).get("devops-paradise.client") in clients

    return (
        [s["Spec"]["Name"] for s in engine.api.services(filters={"label": MANAGED}) if ours(s["Spec"].get("Labels"))]
        + [c.name for c in engine.containers.list(all=True, filters={"label": MANAGED}) if ours(c.labels)]
        + [v.name for v in engine.volumes.list(filters={"label": MANAGED}) if ours(v.attrs.get("Labels"))]
        + [n.name for n in engine.networks.list(filters={"label": MANAGED}) if ours(n.attrs.get("Labels"))]
    )


@pytest.fixture(scope="module")
def swarm(engine: Any, images: dict[str, str]) -> Iterator[Any]:
    """The engine as a Swarm manager; initialised (on loopback) only when it was in no swarm, and then left."""
    info = engine.info().get("Swarm") or {}
    networks_before = {n.name for n in engine.networks.list()}
    initialised = False
    if info.get("LocalNodeState") == "inactive":
        try:
            engine.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
        except docker.errors.APIError as exc:
            unavailable(f"docker swarm init failed: {exc.explanation or exc}")
        initialised = True
    elif info.get("LocalNodeState") != "active" or not info.get("ControlAvailable"):
        unavailable(f"the engine is a swarm {info.get('LocalNodeState')} node without control (not a manager)")
    remove_swarm_managed(engine, CLIENTS)
    yield engine
    remove_swarm_managed(engine, CLIENTS)
    if initialised:
        engine.swarm.leave(force=True)
        for network in engine.networks.list(names=["docker_gwbridge"]):  # swarm made it; leave keeps it
            if network.name not in networks_before:
                with contextlib.suppress(docker.errors.APIError):
                    network.remove()


def start_bridge(data_dir: Path, **env: str) -> BridgeProcess:
    settings = {"PARADISE_RUNTIME": "swarm", "PARADISE_READY_TIMEOUT": "180", "PARADISE_START_TIMEOUT": "120"}
    proc = BridgeProcess(data_dir, env={**settings, **env}).start()
    assert httpx.get(proc.url + "/healthz").json()["runtime"] == "swarm"
    return proc


def stop_bridge(proc: BridgeProcess) -> None:
    with contextlib.suppress(Exception):
        for client in proc.api("GET", "/clients").json():
            proc.api("DELETE", f"/clients/{client['client_id']}")
    proc.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
def swarm_bridge(swarm: Any, work: Path) -> Iterator[BridgeProcess]:
    proc = start_bridge(work / "data")
    yield proc
    stop_bridge(proc)


def service_of(engine: Any, client_id: str, service: str) -> dict[str, Any]:
    return engine.api.inspect_service(f"paradise-{client_id}-{service}")


def live_tasks(engine: Any, service_id: str) -> list[dict[str, Any]]:
    tasks = engine.api.tasks(filters={"service": service_id})
    return [t for t in tasks if t["DesiredState"] == "running" and t["Status"]["State"] in LIVE]


def replicas(engine: Any, service_id: str) -> int:
    return engine.api.inspect_service(service_id)["Spec"]["Mode"]["Replicated"]["Replicas"]


def wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def running_container(engine: Any, service_id: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in live_tasks(engine, service_id):
            container_id = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
            if task["Status"]["State"] in ("starting", "running") and container_id:
                return engine.containers.get(container_id)
        time.sleep(0.3)
    raise AssertionError(f"no running task for service {service_id}")


def spec_for(client_id: str, service: str, port: int, ws: Path, **extra: Any) -> InstanceSpec:
    return InstanceSpec(
        client_id=client_id,
        service=service,
        port=port,
        workspace=ws,
        instance_dir=ws.parent / "instance",
        image=f"devops-paradise/{service}:latest",
        **extra,
    )


# ---- the service spec, without an engine ----------------------------------------------------------------


def test_service_spec_carries_labels_ports_limits_security_and_an_mcp_healthcheck(tmp_path: Path) -> None:
    spec = spec_for("sw-spec", "quality", 8234, tmp_path, memory_bytes=1024**3, cpus=1.5, env={"A": "1"})
    built = build_service(
        spec, image="sha256:abc", network="net1", constraints=["node.id==n1"], healthcheck=health_check(8000)
    )
    labels = {
        "devops-paradise.managed": "true",
        "devops-paradise.client": "sw-spec",
        "devops-paradise.service": "quality",
        "devops-paradise.port": "8234",
    }
    assert built["name"] == "paradise-sw-spec-quality" and built["labels"] == labels
    assert (built["mode"].mode, built["mode"].replicas) == ("replicated", 1)
    template = built["task_template"]
    container = template["ContainerSpec"]
    assert container["Labels"] == labels and container["Image"] == "sha256:abc"
    assert container["CapabilityDrop"] == ["ALL"] and container["Init"] is True
    assert {"A=1", "PARADISE_CLIENT=sw-spec", "PARADISE_WORKSPACE=/workspace", "PARADISE_PUBLIC_PORT=8234"} <= set(
        container["Env"]
    )
    mounts = {m["Target"]: m for m in container["Mounts"]}
    assert mounts["/workspace"]["Type"] == "bind" and mounts["/workspace"]["Source"] == str(tmp_path)
    assert mounts["/state"]["Source"] == "paradise-sw-spec-quality-state"
    assert mounts["/state"]["VolumeOptions"]["Labels"]["devops-paradise.client"] == "sw-spec"
    limits, reservations = template["Resources"]["Limits"], template["Resources"]["Reservations"]
    assert limits == {"MemoryBytes": 1024**3, "NanoCPUs": 1_500_000_000, "Pids": 512}
    assert reservations == {"MemoryBytes": 1024**3 // 4, "NanoCPUs": 375_000_000}
    assert template["RestartPolicy"]["Condition"] == "none"  # the bridge heals, Swarm does not
    assert template["Placement"]["Constraints"] == ["node.id==n1"]
    assert template["Networks"] == [{"Target": "net1"}]
    check = container["Healthcheck"]
    assert check["Test"][:4] == ["CMD", "/opt/venv/bin/python", "-m", "bridge.mcp.healthcheck"]
    assert check["Test"][4:8] == ["--port", "8000", "--path", "/mcp"]
    assert check["Retries"] == 3 and check["StartPeriod"] > check["Interval"]
    ingress = built["endpoint_spec"]
    assert ingress["Mode"] == "vip"
    assert ingress["Ports"] == [
        {"Protocol": "tcp", "PublishedPort": 8234, "TargetPort": 8000, "PublishMode": "ingress"}
    ]
    mine = build_service(spec, image="x", network="n", constraints=[], installation="db-1")
    assert mine["labels"]["devops-paradise.installation"] == "db-1"
    assert mine["task_template"]["ContainerSpec"]["Labels"] == mine["labels"]
    host = build_service(spec, image="x", network="n", constraints=[], publish_mode="host")["endpoint_spec"]
    assert host["Mode"] == "dnsrr" and host["Ports"][0]["PublishMode"] == "host"
    assert (
        "Healthcheck"
        not in build_service(spec, image="x", network="n", constraints=[])["task_template"]["ContainerSpec"]
    )


# ---- the runtime itself on the engine -------------------------------------------------------------------


async def test_runtime_start_is_idempotent_stop_scales_to_zero_remove_leaves_nothing(swarm: Any, work: Path) -> None:
    runtime = SwarmRuntime(stop_grace=2)
    ws = workspace(work / "unit" / "ws", "Unit")
    spec = spec_for("sw-unit", "quality", free_block(1), ws, memory_bytes=1024**3, cpus=1.0)
    try:
        state = await runtime.start(spec)
        service = swarm.api.inspect_service(state["service_id"])
        assert service["Spec"]["Name"] == "paradise-sw-unit-quality"
        assert service["Spec"]["Labels"]["devops-paradise.port"] == str(spec.port)
        ports = service["Endpoint"]["Ports"]
        assert [(p["PublishedPort"], p["TargetPort"], p["PublishMode"]) for p in ports] == [
            (spec.port, 8000, runtime.publish_mode)
        ]
        container = running_container(swarm, state["service_id"])
        assert container.labels["devops-paradise.client"] == "sw-unit"
        host_config = container.attrs["HostConfig"]
        assert host_config["CapDrop"] == ["ALL"] and host_config["PidsLimit"] == 512
        assert host_config["Memory"] == 1024**3 and host_config["NanoCpus"] == 1_000_000_000
        assert host_config["ReadonlyRootfs"] is True  # as on Docker: tmpfs /tmp and $HOME, /state, /workspace
        tmpfs = {m["Destination"] for m in container.attrs["Mounts"] if m["Type"] == "tmpfs"}
        assert tmpfs == {"/tmp", "/home/paradise"}
        assert container.attrs["Config"]["User"] == f"{INSTANCE_UID}:{INSTANCE_UID}"
        network = swarm.networks.get("paradise-sw-unit")
        assert network.attrs["Driver"] == "overlay" and network.attrs["Attachable"] is True
        assert (await runtime.poll(state)).running
        # Swarm's own MCP health check turns the task healthy (its first run is after one interval).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            container.reload()
            if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                break
            time.sleep(1)
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
        task_ids = {t["ID"] for t in live_tasks(swarm, state["service_id"])}
        assert await runtime.start(spec) == state  # idempotent: the same service, the same task
        assert {t["ID"] for t in live_tasks(swarm, state["service_id"])} == task_ids
        assert "Uvicorn running" in "\n".join(await runtime.logs(state, lines=200))
        await runtime.stop(state)
        assert swarm.api.inspect_service(state["service_id"])["Spec"]["Mode"]["Replicated"]["Replicas"] == 0
        poll = await runtime.poll(state)
        assert not poll.running and poll.detail == "scaled to zero"
        await runtime.stop(state)  # idempotent
        assert await runtime.start(spec) == state  # back to one replica, a new task
        assert (await runtime.poll(state)).running
        assert {t["ID"] for t in live_tasks(swarm, state["service_id"])}.isdisjoint(task_ids)
        assert [d.port for d in await runtime.discover() if d.client_id == "sw-unit"] == [spec.port]
        other = SwarmRuntime(installation="another-database")  # sees only its own installation's services
        assert [d for d in await other.discover() if d.client_id == "sw-unit"] == []
        await other.close()
        await runtime.remove("sw-unit", "quality", state)
        assert managed_objects(swarm, {"sw-unit"}) == []
        await runtime.remove("sw-unit", "quality", state)  # idempotent
        assert not (await runtime.poll(state)).running
    finally:
        await runtime.close()
        remove_swarm_managed(swarm, {"sw-unit"})


async def test_workspace_placement_follows_the_node_label(swarm: Any, work: Path) -> None:
    """Without a labelled node, tasks stay on the bridge's node; label one and they go where it says."""
    node = swarm.nodes.get(swarm.info()["Swarm"]["NodeID"])
    spec_before = node.attrs["Spec"]
    runtime = SwarmRuntime(publish_mode="ingress", stop_grace=2)
    spec = spec_for("sw-place", "quality", free_block(1), workspace(work / "place" / "ws", "Placed"))
    try:
        assert runtime._constraints() == [f"node.id=={node.id}"]
        labels = {**(spec_before.get("Labels") or {}), "devops-paradise.workspaces": "true"}
        node.update({**spec_before, "Labels": labels})
        state = await runtime.start(spec)
        template = swarm.api.inspect_service(state["service_id"])["Spec"]["TaskTemplate"]
        assert template["Placement"]["Constraints"] == ["node.labels.devops-paradise.workspaces==true"]
        running_container(swarm, state["service_id"])  # Swarm accepted the constraint and placed the task
        assert [t["NodeID"] for t in live_tasks(swarm, state["service_id"])] == [node.id]
        await runtime.remove("sw-place", "quality", state)
    finally:
        node.reload()
        node.update(spec_before)  # the node's labels as found
        await runtime.close()
        remove_swarm_managed(swarm, {"sw-place"})


@pytest.mark.skipif(not routing_mesh_available(), reason="this kernel has no IPVS: Swarm's routing mesh cannot work")
async def test_ingress_routing_mesh_answers_mcp_on_loopback(swarm: Any, work: Path) -> None:
    runtime = SwarmRuntime(publish_mode="ingress", stop_grace=2)
    spec = spec_for("sw-mesh", "quality", free_block(1), workspace(work / "mesh" / "ws", "Meshed"))
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    try:
        state = await runtime.start(spec)
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and answer is None:
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.post(f"http://127.0.0.1:{spec.port}/mcp", json=body, timeout=2)
            time.sleep(0.5)
        assert answer is not None and answer.status_code < 500  # an MCP server answered through the mesh
        await runtime.remove("sw-mesh", "quality", state)
    finally:
        await runtime.close()
        remove_swarm_managed(swarm, {"sw-mesh"})


# ---- through a real bridge ------------------------------------------------------------------------------


async def test_idle_scales_the_service_to_zero_and_a_request_wakes_it(swarm: Any, work: Path) -> None:
    """A bridge of its own (its idle timeout is short), so it never idles the other tests' instances."""
    proc = start_bridge(work / "idle-data", PARADISE_IDLE_TIMEOUT="3")
    try:
        created = proc.register("sw-idle", workspace(work / "idle", "Sleeper"), ["quality"], wait=120)
        service_id = service_of(swarm, "sw-idle", "quality")["ID"]
        assert proc.wait_state("sw-idle", "quality", {"idle"}, timeout=60)["state"] == "idle"
        # The state says idle first, then the stop runs (so the monitor never takes it for a crash).
        assert wait_for(lambda: replicas(swarm, service_id) == 0 and not live_tasks(swarm, service_id), 30)
        async with mcp_client(proc.mcp_url("sw-idle", "quality"), created["token"]) as client:
            profiles = await client.call_tool("list_profiles", {})  # held while the service scales back up
        assert not profiles.is_error
        assert service_of(swarm, "sw-idle", "quality")["ID"] == service_id and replicas(swarm, service_id) == 1
        kinds = [e["kind"] for e in proc.api("GET", "/events", params={"client_id": "sw-idle"}).json()]
        assert "instance.idle" in kinds and "instance.wake" in kinds and "port.moved" not in kinds
    finally:
        stop_bridge(proc)
        remove_swarm_managed(swarm, {"sw-idle"})


async def test_clients_reach_their_quality_and_serena_services(swarm_bridge: BridgeProcess, swarm, work) -> None:
    created = swarm_bridge.register("sw-ann", workspace(work / "ann", "Anchor"), ["serena", "quality"], wait=240)
    assert {i["service"]: i["state"] for i in created["instances"]} == {"serena": "running", "quality": "running"}
    async with mcp_client(swarm_bridge.mcp_url("sw-ann", "quality"), created["token"]) as client:
        assert not (await client.call_tool("list_profiles", {})).is_error
    async with mcp_client(swarm_bridge.mcp_url("sw-ann", "serena"), created["token"]) as client:
        found = await client.call_tool("find_symbol", {"name_path_pattern": "Anchor"})
    assert [s["name_path"] for s in json.loads(found.content[0].text)] == ["Anchor"]
    for instance in created["instances"]:
        service = service_of(swarm, "sw-ann", instance["service"])
        labels = service["Spec"]["Labels"]
        assert labels["devops-paradise.client"] == "sw-ann" and labels["devops-paradise.port"] == str(instance["port"])
        assert labels.get("devops-paradise.installation")  # the bridge's database, as on the Docker runtime
        assert service["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"] == labels
        assert [p["PublishedPort"] for p in service["Endpoint"]["Ports"]] == [instance["port"]]
    serena = running_container(swarm, service_of(swarm, "sw-ann", "serena")["ID"])
    assert serena.attrs["HostConfig"]["Memory"] == 2 * 1024**3
    assert "paradise-sw-ann" in serena.attrs["NetworkSettings"]["Networks"]


def test_a_killed_task_comes_back_exactly_once(swarm_bridge: BridgeProcess, swarm, work) -> None:
    swarm_bridge.register("sw-kill", workspace(work / "kill", "Phoenix"), ["quality"], wait=120)
    service_id = service_of(swarm, "sw-kill", "quality")["ID"]
    first = running_container(swarm, service_id)
    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:  # scale-to-zero forgets tasks: sample them all along
        while not done.is_set():
            with contextlib.suppress(docker.errors.APIError):
                seen.update(t["ID"] for t in swarm.api.tasks(filters={"service": service_id}))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        time.sleep(0.5)
        first.kill()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            state = swarm_bridge.state("sw-kill", "quality")
            tasks = live_tasks(swarm, service_id)
            if state["state"] == "running" and tasks and tasks[0]["Status"]["State"] in ("starting", "running"):
                break
            time.sleep(0.3)
        time.sleep(8)  # long enough for a second restart (by Swarm or by the bridge) to show, were there one
    finally:
        done.set()
        watcher.join(timeout=5)
    state = swarm_bridge.state("sw-kill", "quality")
    assert state["state"] == "running" and state["restarts"] == 1
    assert len(seen) == 2, seen  # the killed task and exactly one replacement
    assert len(live_tasks(swarm, service_id)) == 1
    assert service_of(swarm, "sw-kill", "quality")["ID"] == service_id
    kinds = [e["kind"] for e in swarm_bridge.api("GET", "/events", params={"client_id": "sw-kill"}).json()]
    assert kinds.count("instance.died") == 1


def test_delete_leaves_no_service_network_or_volume(swarm_bridge: BridgeProcess, swarm, work) -> None:
    swarm_bridge.register("sw-gone", workspace(work / "gone", "Ghost"), ["quality"], wait=120)
    objects = managed_objects(swarm, {"sw-gone"})
    assert {"paradise-sw-gone-quality", "paradise-sw-gone-quality-state", "paradise-sw-gone"} <= set(objects)
    assert swarm_bridge.api("DELETE", "/clients/sw-gone").status_code == 204
    assert managed_objects(swarm, {"sw-gone"}) == []
    assert swarm_bridge.api("DELETE", "/clients/sw-gone").status_code == 204  # idempotent


async def test_bridge_kill9_adopts_the_service_and_the_session_survives(swarm_bridge: BridgeProcess, swarm, work):
    created = swarm_bridge.register("sw-adopt", workspace(work / "adopt", "Keeper"), ["quality"], wait=120)
    service_id = service_of(swarm, "sw-adopt", "quality")["ID"]
    tasks = {t["ID"] for t in live_tasks(swarm, service_id)}
    async with mcp_client(swarm_bridge.mcp_url("sw-adopt", "quality"), created["token"]) as client:
        assert not (await client.call_tool("list_profiles", {})).is_error
        swarm_bridge.kill(signal.SIGKILL)
        assert {t["ID"] for t in live_tasks(swarm, service_id)} == tasks
        swarm_bridge.start()
        again = await client.call_tool("list_profiles", {})  # the same MCP session, no re-initialize
    assert not again.is_error
    assert service_of(swarm, "sw-adopt", "quality")["ID"] == service_id
    assert {t["ID"] for t in live_tasks(swarm, service_id)} == tasks, swarm_bridge.log.read_text()[-6000:]  # adopted
    events = swarm_bridge.api("GET", "/events", params={"limit": 50}).json()
    reconcile = next(e for e in events if e["kind"] == "bridge.reconcile")
    message = reconcile["message"]
    assert "on swarm" in message and "sw-adopt/quality" in message.split("restarted")[0] and "restarted 0" in message
